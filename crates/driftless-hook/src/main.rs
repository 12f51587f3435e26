//! `driftless-hook`: one webhook request in, the sync of the repos it names started, one answer
//! out. Socket-activated (`driftless-hook.socket`, `Accept=yes`): the request is on stdin, the
//! answer goes to stdout, and the process exits; or `--listen ADDR` without systemd.
//!
//! Thin by design: read the request, ask `driftless_core::hook` what to do, start, answer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use driftless_core::exit::Exit;
use driftless_core::hook::request::{self, Deadline, Limits};
use driftless_core::hook::route::Repo;
use driftless_core::hook::secrets::Secrets;
use driftless_core::hook::start::{self, Starter};
use driftless_core::hook::{Answer, Response};
use driftless_hook::cli::Args;

fn main() -> ExitCode {
    driftless_cli::answer_completion::<Args>();
    let args = Args::parse();
    driftless_cli::main("driftless-hook", &args.common, || run(&args))
}

fn run(args: &Args) -> Result<Exit, Box<dyn std::error::Error>> {
    let limits = Limits {
        max_body: args.max_body,
        deadline: Duration::from_millis(args.read_timeout),
        ..Limits::default()
    };
    let secrets = Secrets::in_dir(
        args.credentials
            .clone()
            .or_else(|| std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from)),
    );
    if secrets.dir().is_none() {
        tracing::warn!("no credentials directory: every request is refused; see driftless-hook --help, Secrets");
    }
    if let Some(addr) = &args.listen {
        return serve(args, addr, &limits, &secrets);
    }
    // Accept=yes: stdin and stdout are the accepted connection.
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    let starter = Starter::Systemd {
        systemctl: args.systemctl.clone(),
        user: args.user,
    };
    let (response, exit) = match request::read(&mut input, &mut StdinDeadline, &mut output, &limits) {
        Err(response) => (response, Exit::Ok),
        Ok(request) => match answer(args, &request, &secrets) {
            Err(response) => (response, Exit::Usage),
            Ok(Answer::Done(response)) => (response, Exit::Ok),
            Ok(Answer::Start { names, what }) => started(&starter, &names, &what),
        },
    };
    log(&response);
    // The client may be gone; there is no one left to tell.
    let _ = output.write_all(&response.to_http()).and_then(|()| output.flush());
    Ok(exit)
}

/// What to do with a request read whole, with the config as it is now.
fn answer(args: &Args, request: &request::Request, secrets: &Secrets) -> Result<Answer, Response> {
    let (config, state) = args.common.load().map_err(|err| {
        tracing::error!("{}", driftless_core::redact::error_chain(&err));
        Response::new(500, "the driftless config cannot be read; see the hook's log")
    })?;
    let repos = Repo::all_of(&config);
    Ok(driftless_core::hook::answer(
        request,
        &repos,
        secrets,
        state.root(),
        driftless_core::time::now_unix(),
    ))
}

/// Start `names` and say so; 503 if systemd would not take the jobs.
fn started(starter: &Starter, names: &[String], what: &str) -> (Response, Exit) {
    match starter.start(names) {
        Ok(done) => {
            let done: Vec<String> = done.iter().map(ToString::to_string).collect();
            (Response::new(202, format!("{} ({what})", done.join(", "))), Exit::Ok)
        }
        Err(err) => {
            tracing::error!("{}", driftless_core::redact::error_chain(&err));
            let units: Vec<String> = names.iter().map(|n| start::unit(n)).collect();
            (
                Response::new(503, format!("could not start {}; see the hook's log", units.join(" "))),
                Exit::TempFail,
            )
        }
    }
}

fn log(response: &Response) {
    if response.status < 400 {
        tracing::info!("{} {}", response.status, response.body);
    } else {
        tracing::warn!("{} {}", response.status, response.body);
    }
}

/// The socket on stdin: each read bounded by `SO_RCVTIMEO`. Not a socket (a test's pipe, a
/// file): reads are not bounded.
struct StdinDeadline;

impl Deadline for StdinDeadline {
    fn set_read_timeout(&mut self, left: Duration) -> std::io::Result<()> {
        let stdin = std::io::stdin();
        match rustix::net::sockopt::set_socket_timeout(&stdin, rustix::net::sockopt::Timeout::Recv, Some(left)) {
            Ok(()) | Err(rustix::io::Errno::NOTSOCK) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

struct TcpDeadline(std::net::TcpStream);

impl Deadline for TcpDeadline {
    fn set_read_timeout(&mut self, left: Duration) -> std::io::Result<()> {
        self.0.set_read_timeout(Some(left))
    }
}

/// `--listen`: one connection at a time; after a 202 the connection is closed, then
/// `sync-repo NAME` runs, and only then is the next connection accepted.
fn serve(args: &Args, addr: &str, limits: &Limits, secrets: &Secrets) -> Result<Exit, Box<dyn std::error::Error>> {
    let listener = std::net::TcpListener::bind(addr).map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    let sync_repo = args.sync_repo.clone().unwrap_or_else(beside_me);
    let starter = Starter::Direct { sync_repo };
    tracing::info!("listening on {addr}, one request at a time");
    for connection in listener.incoming() {
        let Ok(mut stream) = connection else { continue };
        let (Ok(mut input), Ok(deadline)) = (stream.try_clone(), stream.try_clone()) else {
            continue;
        };
        let response = match request::read(&mut input, &mut TcpDeadline(deadline), &mut stream, limits) {
            Err(response) => response,
            Ok(request) => match answer(args, &request, secrets) {
                Err(response) | Ok(Answer::Done(response)) => response,
                Ok(Answer::Start { names, what }) => {
                    let units: Vec<String> = names.iter().map(|n| format!("sync-repo {n}")).collect();
                    let response = Response::new(202, format!("running {} ({what})", units.join(", ")));
                    log(&response);
                    let _ = stream.write_all(&response.to_http());
                    drop(stream);
                    if let Err(err) = starter.start(&names) {
                        tracing::error!("{}", driftless_core::redact::error_chain(&err));
                    }
                    continue;
                }
            },
        };
        log(&response);
        let _ = stream.write_all(&response.to_http());
    }
    Ok(Exit::Ok)
}

/// `sync-repo` in this program's directory when it is there (an install puts both in one
/// place), else the one on PATH.
fn beside_me() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|me| me.parent().map(|dir| dir.join("sync-repo")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| Path::new("sync-repo").to_owned())
}
