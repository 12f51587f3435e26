//! Fetch one branch from the remote, through gix.
//!
//! Only `refs/heads/BRANCH` is asked for, and no tags, so a run where nothing changed costs one
//! ref advertisement and nothing else (over http, one request: see [`own_transport`]).

use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice;
use gix::remote::Direction;

use super::ObjectId;
use super::checkout::Checkout;
use crate::redact::redact;

/// Where to fetch from, resolved from the config or the checkout's `origin`.
#[derive(Debug, Clone)]
pub struct Remote {
    /// The URL, possibly with credentials: never log this, use [`Remote::display`].
    url: String,
    /// The local ref that records the fetched tip.
    pub tracking_ref: String,
    /// The branch on the remote.
    pub branch: String,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no remote to fetch from: the checkout has no `origin` and no remote is configured; \
         set `remote:` in the config, pass --remote URL, or run `git -C {path} remote add origin URL`"
    )]
    NoRemote { path: String },
    #[error("remote {url} is unreachable; check the network and the URL, the next run will try again")]
    Unreachable { url: String, source: gix::Error },
    #[error(
        "authentication failed at {url}: the forge refused the credentials (or asked for some and \
         none were found); check the deploy token or key, the credential helper (`git config \
         credential.helper`, e.g. a `store` file in the unit's home) and that it may read this repo"
    )]
    AuthenticationFailed { url: String, source: gix::Error },
    #[error(
        "remote {url} was not found at the forge (HTTP 404); check the URL, or whether the repo was renamed or moved"
    )]
    NotFound { url: String, source: gix::Error },
    #[error(
        "ssh to {url} was refused: the server's host key is not the one pinned in the known-hosts \
         file (a new or impostor server), or the deploy key was not accepted; see ssh's message \
         above, and check the known_hosts file and the key in `core.sshCommand` or GIT_SSH_COMMAND"
    )]
    SshRefused { url: String, source: gix::Error },
    #[error(
        "remote {url} redirects where git would not follow; point the config (or `origin`) at the \
         new URL, or set http.followRedirects"
    )]
    Redirected { url: String, source: gix::Error },
    #[error("remote {url} has no branch `{branch}`; set `branch:` in the config or pass --branch NAME")]
    NoSuchBranch { url: String, branch: String },
    #[error(
        "remote {url} carries credentials over plain http, which would send them in clear text; \
         use https:// or ssh, or drop the credentials from the URL"
    )]
    CleartextCredentials { url: String },
    #[error(
        "remote {url} does not have commit {id}: it was recorded without being pushed, or the \
         remote was rewritten; push it there, or record a commit the remote has"
    )]
    NoSuchCommit { url: String, id: ObjectId },
    #[error("fetching from {url} failed")]
    Fetch { url: String, source: gix::Error },
    #[error("cannot record the fetched tip in {reference}")]
    Record {
        reference: String,
        source: super::locks::Error,
    },
}

impl Error {
    /// Whether the next run may succeed without anyone doing anything.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Fetch { .. } => !self.is_local_storage(),
            Error::Record { source, .. } => source.is_held(),
            _ => false,
        }
    }

    /// Whether writing the fetched objects into the checkout failed for want of local storage:
    /// a read-only file system (a sandbox without the checkout in its ReadWritePaths), a full
    /// disk, a quota. That is not the remote's fault and the next tick will not fix it.
    pub fn is_local_storage(&self) -> bool {
        use std::io::ErrorKind::{QuotaExceeded, ReadOnlyFilesystem, StorageFull};
        io_errors(self).any(|io| matches!(io.kind(), ReadOnlyFilesystem | StorageFull | QuotaExceeded))
    }
}

/// What an http(s) failure says about the remote, from the error chain: credentials refused or
/// missing (401, 403), no such repo (404), a redirect git would not follow; `None` for the rest
/// (unreachable, timeouts, 5xx), which the next run may get past.
fn classify_http(url: &str, source: gix::Error) -> Error {
    use gix::protocol::transport::client::AuthenticationRequired;
    let mut code = None;
    {
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&source);
        while let Some(err) = next {
            if let Some(status) = err.downcast_ref::<super::http::Status>() {
                code = Some(if status.location.is_some() { 300 } else { status.code });
                break;
            }
            // The forge asked (401) and git's credential helpers had nothing to give.
            if err.is::<AuthenticationRequired>() || err.to_string().contains("Failed to obtain credentials") {
                code = Some(401);
                break;
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && let Some(inner) = io.get_ref()
            {
                if let Some(status) = inner.downcast_ref::<super::http::Status>() {
                    code = Some(if status.location.is_some() { 300 } else { status.code });
                    break;
                }
                if inner.is::<AuthenticationRequired>() {
                    code = Some(401);
                    break;
                }
            }
            next = err.source();
        }
    }
    let url = url.to_owned();
    if url.starts_with("ssh://") || (!url.contains("://") && url.contains(':') && !url.starts_with('/')) {
        // ssh ends the session before the protocol starts when it refuses the host key (exit 255,
        // "Host key verification failed.") or the key: an early end of the handshake, or gix's
        // PermissionDenied from ssh's message. Neither heals by itself.
        let refused = io_kinds(&source).any(|k| {
            matches!(
                k,
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::PermissionDenied
            )
        });
        if refused {
            return Error::SshRefused { url, source };
        }
    }
    match code {
        Some(401 | 403) => Error::AuthenticationFailed { url, source },
        Some(404) => Error::NotFound { url, source },
        Some(300..=399) => Error::Redirected { url, source },
        _ => Error::Unreachable { url, source },
    }
}

/// The kinds of the io errors in `err`'s chain.
fn io_kinds(err: &gix::Error) -> impl Iterator<Item = std::io::ErrorKind> + '_ {
    io_errors(err).map(std::io::Error::kind)
}

/// Every `io::Error` in `err`'s chain, also those a `gix::Error` holds (made with
/// `gix::Error::from_error`, whose `source()` skips the error it wraps).
fn io_errors<'a>(err: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a std::io::Error> + 'a {
    let mut found: Vec<&std::io::Error> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found.push(io);
        }
        if let Some(gix_error) = e.downcast_ref::<gix::Error>() {
            found.extend(
                gix_error
                    .iter_errors()
                    .filter_map(|inner| inner.downcast_ref::<std::io::Error>()),
            );
        }
        next = e.source();
    }
    found.into_iter()
}

/// Credentials from git's helpers for the URL asked about (which follows redirects), never
/// from a prompt: a timer unit has no one to ask, and a terminal prompt would hang the run.
fn helpers_without_prompt(
    repo: &gix::Repository,
) -> impl FnMut(gix::credentials::helper::Action) -> gix::Result<Option<gix::credentials::protocol::Outcome>> + '_ {
    let mut previous = None;
    move |action| {
        if let gix::credentials::helper::Action::Get(ctx) = &action {
            let url = ctx
                .url
                .clone()
                .or_else(|| ctx.to_url())
                .ok_or_else(|| gix::Error::from_error(std::io::Error::other("no URL to ask credentials for")))?;
            let url = gix::url::parse(url.as_bstr()).map_err(gix::Error::from_error)?;
            let (cascade, _, mut prompt) = repo.config_snapshot().credential_helpers(url)?;
            prompt.mode = gix::prompt::Mode::Disable;
            prompt.askpass = None;
            previous = Some((cascade, prompt));
        }
        match previous.as_mut() {
            Some((cascade, prompt)) => cascade.invoke(action, prompt.clone()),
            None => Ok(None),
        }
    }
}

/// What the remote said.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The remote's tip of the branch.
    pub tip: ObjectId,
    /// The tracking ref's value before this fetch, to tell a force-push from local divergence.
    pub previous_tip: Option<ObjectId>,
}

impl Remote {
    /// Resolve the remote: `configured` URL if given, else the checkout's `origin`.
    ///
    /// With `origin` the tip is recorded in `refs/remotes/origin/BRANCH`, as `git fetch` would.
    /// With another URL it goes to `refs/driftless/remote/BRANCH`, so `origin`'s tracking refs
    /// keep meaning what the user expects.
    pub fn resolve(checkout: &Checkout, configured: Option<&str>, branch: &str) -> Result<Remote, Error> {
        if let Some(url) = configured {
            return Ok(Remote {
                url: url.to_owned(),
                tracking_ref: format!("refs/driftless/remote/{branch}"),
                branch: branch.to_owned(),
            });
        }
        let no_remote = || Error::NoRemote {
            path: checkout.workdir.display().to_string(),
        };
        let origin = checkout.repo.find_remote("origin").map_err(|_| no_remote())?;
        let url = origin.url(Direction::Fetch).ok_or_else(no_remote)?;
        Ok(Remote {
            url: url.to_bstring().to_str_lossy().into_owned(),
            tracking_ref: format!("refs/remotes/origin/{branch}"),
            branch: branch.to_owned(),
        })
    }

    /// gix's remote for this URL, fetching `wanted` only and no tags: the one shape both the
    /// fetch and the ref advertisement use.
    fn gix_remote<'repo>(&self, repo: &'repo gix::Repository, wanted: &str) -> Result<gix::Remote<'repo>, Error> {
        let url = self.display();
        repo.remote_at(self.url.as_str())
            .map_err(|source| Error::Unreachable {
                url: url.clone(),
                source,
            })?
            .with_fetch_tags(gix::remote::fetch::Tags::None)
            .with_refspecs([wanted], Direction::Fetch)
            .map_err(|source| Error::Fetch { url, source })
    }

    /// The URL with any password replaced by `***`, safe for logs.
    pub fn display(&self) -> String {
        redact(&self.url)
    }

    /// Fetch the branch's objects, writing no ref: a run that refuses (or a dry run) leaves
    /// every ref as it was. [`Remote::record_tip`] moves the tracking ref once the sync succeeded.
    pub fn fetch(&self, checkout: &Checkout) -> Result<Fetched, Error> {
        let repo = &checkout.repo;
        let url = self.display();
        let previous_tip = self.tracked_tip(checkout);
        let wanted = format!("refs/heads/{}", self.branch);
        if has_cleartext_credentials(&self.url) {
            return Err(Error::CleartextCredentials { url });
        }
        let unreachable = |source| Error::Unreachable {
            url: url.clone(),
            source,
        };
        let remote = self.gix_remote(repo, &wanted)?;
        if let Some(remote_repo) = local_remote(&self.url) {
            // A remote on this host: read its branch and copy what is missing straight from its
            // object database, with no upload-pack process and no protocol.
            let tip = remote_repo
                .find_reference(wanted.as_str())
                .ok()
                .and_then(|r| r.into_fully_peeled_id().ok())
                .map(|id| id.detach())
                .ok_or_else(|| Error::NoSuchBranch {
                    url: url.clone(),
                    branch: self.branch.clone(),
                })?;
            copy_missing_objects(&remote_repo, &checkout.repo, tip).map_err(|source| Error::Fetch {
                url: url.clone(),
                source,
            })?;
            return Ok(Fetched { tip, previous_tip });
        }
        let prepare = connect(&remote, repo)
            .map_err(unreachable)?
            .with_credentials(helpers_without_prompt(repo))
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|source| classify_http(&url, source))?;
        let tip = advertised(&prepare.ref_map().remote_refs, &wanted).ok_or_else(|| Error::NoSuchBranch {
            url: url.clone(),
            branch: self.branch.clone(),
        })?;
        if repo.has_object(tip) {
            // Nothing to download: the tip came with an earlier fetch, whose pack (written whole,
            // then renamed into place) also holds everything below it. This skips gix's
            // negotiation and its ref update with no edits.
            return Ok(Fetched { tip, previous_tip });
        }
        let outcome = prepare
            .receive(gix::progress::Discard, &AtomicBool::new(false))
            .map_err(|source| Error::Fetch {
                url: url.clone(),
                source,
            })?;
        unpin_pack(&outcome);
        Ok(Fetched { tip, previous_tip })
    }
}

impl Remote {
    /// Make sure the checkout has commit `id` and everything below it, fetching from the remote
    /// when it does not, as `git submodule update` does: every branch first (into
    /// `refs/remotes/origin/*`, as git's fetch in the submodule writes them), then, if the
    /// commit is on none of them, the commit itself (which the forge may allow).
    pub fn fetch_commit(&self, checkout: &Checkout, id: ObjectId) -> Result<(), Error> {
        let repo = &checkout.repo;
        if repo.has_object(id) {
            return Ok(());
        }
        let url = self.display();
        if has_cleartext_credentials(&self.url) {
            return Err(Error::CleartextCredentials { url });
        }
        let missing = || Error::NoSuchCommit { url: url.clone(), id };
        if let Some(remote_repo) = local_remote(&self.url) {
            if !remote_repo.has_object(id) {
                return Err(missing());
            }
            return copy_missing_objects(&remote_repo, repo, id)
                .map(drop)
                .map_err(|source| Error::Fetch {
                    url: url.clone(),
                    source,
                });
        }
        let hex = id.to_string();
        // Every branch first, into the remote-tracking refs as `git fetch` in the submodule
        // writes them (a one-sided glob is no refspec gix takes); then the commit by its id, for
        // a forge that serves commits no branch holds.
        for wanted in ["+refs/heads/*:refs/remotes/origin/*", hex.as_str()] {
            let remote = self.gix_remote(repo, wanted)?;
            let unreachable = |source| Error::Unreachable {
                url: url.clone(),
                source,
            };
            let prepare = connect(&remote, repo)
                .map_err(unreachable)?
                .with_credentials(helpers_without_prompt(repo))
                .prepare_fetch(gix::progress::Discard, Default::default())
                .map_err(|source| classify_http(&url, source))?;
            match prepare.receive(gix::progress::Discard, &AtomicBool::new(false)) {
                Ok(outcome) => unpin_pack(&outcome),
                // The forge refusing an unadvertised commit: the commit is not there to fetch.
                Err(_) if wanted == hex => return Err(missing()),
                Err(source) => {
                    return Err(Error::Fetch {
                        url: url.clone(),
                        source,
                    });
                }
            }
            if repo.has_object(id) {
                return Ok(());
            }
        }
        Err(missing())
    }

    /// The remote's tip of the branch, as `git ls-remote` would say: the ref advertisement
    /// only, nothing written to the checkout (works where `.git` is read-only).
    pub fn advertised_tip(&self, checkout: &Checkout) -> Result<ObjectId, Error> {
        let url = self.display();
        let wanted = format!("refs/heads/{}", self.branch);
        if has_cleartext_credentials(&self.url) {
            return Err(Error::CleartextCredentials { url });
        }
        let no_branch = || Error::NoSuchBranch {
            url: url.clone(),
            branch: self.branch.clone(),
        };
        if let Some(remote_repo) = local_remote(&self.url) {
            return remote_repo
                .find_reference(wanted.as_str())
                .ok()
                .and_then(|r| r.into_fully_peeled_id().ok())
                .map(|id| id.detach())
                .ok_or_else(no_branch);
        }
        let unreachable = |source| Error::Unreachable {
            url: url.clone(),
            source,
        };
        let remote = self.gix_remote(&checkout.repo, &wanted)?;
        let (ref_map, _handshake) = connect(&remote, &checkout.repo)
            .map_err(unreachable)?
            .ref_map(gix::progress::Discard, Default::default())
            .map_err(unreachable)?;
        advertised(&ref_map.remote_refs, &wanted).ok_or_else(no_branch)
    }

    /// Where the tracking ref points now: the tip the last successful sync recorded.
    pub fn tracked_tip(&self, checkout: &Checkout) -> Option<ObjectId> {
        checkout
            .repo
            .try_find_reference(self.tracking_ref.as_str())
            .ok()
            .flatten()
            .and_then(|r| r.target().try_id().map(ToOwned::to_owned))
    }

    /// Point the tracking ref at the fetched `tip`, as `git fetch` would have, with a reflog entry.
    pub fn record_tip(&self, checkout: &Checkout, tip: ObjectId) -> Result<(), Error> {
        if self.tracked_tip(checkout) == Some(tip) {
            return Ok(());
        }
        let message = format!("sync-repo: fetch {} {}", self.display(), self.branch);
        super::set_reference(
            &checkout.repo,
            &self.tracking_ref,
            tip,
            gix::refs::transaction::PreviousValue::Any,
            &message,
        )
        .map_err(|source| Error::Record {
            reference: self.tracking_ref.clone(),
            source,
        })
    }
}

/// `http://user:password@host/...`: gix refuses to send such credentials, and so do we, up front.
/// The id the remote advertises for the ref named `wanted` (peeled, as `git ls-remote` shows a
/// tag's target), when it advertises that ref.
fn advertised(refs: &[gix::protocol::handshake::Ref], wanted: &str) -> Option<ObjectId> {
    refs.iter().find_map(|r| {
        let (name, target, peeled) = r.unpack();
        (name == wanted.as_bytes().as_bstr())
            .then(|| peeled.or(target).map(ToOwned::to_owned))
            .flatten()
    })
}

fn has_cleartext_credentials(url: &str) -> bool {
    url.strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .is_some_and(|authority| authority.contains('@'))
}

/// The repository of a remote on this host (a path or `file://`), opened without its config.
fn local_remote(url: &str) -> Option<gix::Repository> {
    let path = url.strip_prefix("file://").unwrap_or(url);
    if !path.starts_with('/') {
        return None;
    }
    gix::open_opts(path, gix::open::Options::isolated()).ok()
}

/// Copy every object reachable from `tip` that `dst` lacks into one new pack, as `git fetch`
/// from a path does (see [`super::pack`]); returns how many objects it copied.
fn copy_missing_objects(src: &gix::Repository, dst: &gix::Repository, tip: ObjectId) -> Result<usize, gix::Error> {
    Ok(super::pack::copy_missing(src, dst, tip)?.map_or(0, |written| written.objects as usize))
}

type BoxedTransport = Box<dyn gix::protocol::transport::client::blocking_io::Transport + Send>;

/// A connection to `remote` for fetching: through [`own_transport`] where driftless brings
/// one, else gix's own.
fn connect<'a, 'auth, 'repo>(
    remote: &'a gix::Remote<'repo>,
    repo: &gix::Repository,
) -> Result<gix::remote::Connection<'a, 'auth, 'repo, BoxedTransport>, gix::Error> {
    Ok(match own_transport(remote, repo)? {
        Some(transport) => remote.to_connection_with_transport(transport),
        None => remote.connect(Direction::Fetch)?,
    })
}

/// Remove the `.keep` gix leaves beside a pack that no ref update bound, for the caller to
/// remove once refs point into it. Left there, `git gc` would never fold the pack into another,
/// and every update would add one more for every later lookup to search. The pack's objects
/// stay safe without it: gc keeps unreachable objects for two weeks, and the tracking ref
/// points at them as soon as the sync succeeds.
fn unpin_pack(outcome: &gix::remote::fetch::Outcome) {
    if let gix::remote::fetch::Status::Change { write_pack_bundle, .. } = &outcome.status
        && let Some(keep) = &write_pack_bundle.keep_path
        && let Err(e) = std::fs::remove_file(keep)
    {
        tracing::warn!(
            "could not remove {}: {e}; `git gc` will leave that pack alone",
            keep.display()
        );
    }
}

/// The transports driftless brings itself: `git://` with `TCP_NODELAY`, and http(s) through ureq
/// with kept-alive connections (see [`super::http`]). ssh and local paths are left to gix's
/// `connect`.
///
/// Over http(s) the protocol is v1 unless `protocol.version` is set in git's config: every
/// request of the stateless HTTP protocol is a fresh `upload-pack` on the forge, and v2 spends
/// one more of them (capabilities, then `ls-refs`, then `fetch`) where v1's first answer already
/// carries the refs. A run with nothing new thus costs the forge one request instead of two.
/// v2's gain, a ref list filtered on the server, matters only for repos with very many refs;
/// `git config protocol.version 2` in the checkout (or globally) brings it back.
fn own_transport(remote: &gix::Remote<'_>, repo: &gix::Repository) -> Result<Option<BoxedTransport>, gix::Error> {
    use gix::protocol::transport::client::{blocking_io::http, git};
    let (url, configured) = remote.sanitized_url_and_version(Direction::Fetch)?;
    let is_http = matches!(url.scheme, gix::url::Scheme::Http | gix::url::Scheme::Https);
    let version = match repo.config_snapshot().integer("protocol.version") {
        None if is_http => gix::protocol::transport::Protocol::V1,
        _ => configured,
    };
    match url.scheme {
        gix::url::Scheme::Http | gix::url::Scheme::Https => {
            // git has no connect timeout of its own (curl's is 300 s); ours is in seconds, as curl's.
            let connect_timeout = repo
                .config_snapshot()
                .integer("http.connectTimeout")
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs);
            return Ok(Some(Box::new(http::connect_http(
                super::http::Forge::new(connect_timeout),
                url,
                version,
                false,
            ))));
        }
        gix::url::Scheme::Git => {}
        _ => return Ok(None),
    }
    let host = url.host().unwrap_or("localhost").to_owned();
    let port = url.port;
    let io = |e: std::io::Error| gix::Error::from_error(e);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port.unwrap_or(9418)))
        .map_err(io)?
        .next()
        .ok_or_else(|| io(std::io::Error::other(format!("cannot resolve {host}"))))?;
    let read = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(20)).map_err(io)?;
    read.set_nodelay(true).map_err(io)?;
    let write = read.try_clone().map_err(io)?;
    let connection = git::blocking_io::Connection::new(
        read,
        write,
        version,
        url.path.clone(),
        Some((host, port)),
        git::ConnectMode::Daemon,
        false,
    );
    Ok(Some(Box::new(connection)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_over_plain_http_are_detected() {
        assert!(super::has_cleartext_credentials("http://bob:pw@host/r.git"));
        assert!(super::has_cleartext_credentials("http://token@host/r.git"));
        assert!(!super::has_cleartext_credentials("https://bob:pw@host/r.git"));
        assert!(!super::has_cleartext_credentials("http://host/r@x.git"));
    }
}
