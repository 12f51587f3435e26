//! Blobs to worktree files and worktree files to blob ids, converted as git converts them:
//! `.gitattributes` (`text`, `eol`, `ident`, `filter`), `core.autocrlf`, `core.eol` and the
//! filter drivers configured on the host (git-lfs, git-crypt, any `filter.<name>.smudge`),
//! through gix's own filter pipeline.
//!
//! Attributes are read as `git checkout` reads them: from the tree being checked out first,
//! then from the worktree. A path whose `filter` attribute names a driver that is not
//! configured, or whose program is not installed, is refused before anything is written:
//! git would write the stored blob (an LFS pointer, an encrypted file) as if it were content.

use std::io::{Read, Write};
use std::path::Path;

use gix::bstr::{BStr, BString, ByteSlice};
use gix::worktree::stack::state::attributes::Source;

use super::ObjectId;

/// A filter that cannot run on this host, and the paths that need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingDriver {
    /// The driver's name (`lfs`).
    pub name: String,
    /// Why it cannot run ("not configured", "program `git-lfs` not found").
    pub why: String,
    /// The first path that needs it.
    pub path: BString,
}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot set up git's filters (attributes, eol, drivers)")]
    Setup { source: gix::Error },
    #[error("converting {path} as git would failed", path = path.to_str_lossy())]
    Convert { path: BString, source: gix::Error },
    #[error("reading or writing {path} failed", path = path.to_str_lossy())]
    Io { path: BString, source: std::io::Error },
}

/// The conversions for one checkout, with attributes from `index` (the tree being written).
pub struct Filters<'repo> {
    pipeline: gix::filter::Pipeline<'repo>,
    attributes: gix::AttributeStack<'repo>,
    drivers: Vec<gix::filter::plumbing::Driver>,
    matches: gix::attrs::search::Outcome,
    index: gix::index::File,
}

impl<'repo> Filters<'repo> {
    /// Filters for writing (and comparing with) the tree that `index` holds.
    pub fn new(repo: &'repo gix::Repository, index: gix::index::File) -> Result<Filters<'repo>, Error> {
        let setup = |source| Error::Setup { source };
        let stack = repo
            .attributes_only(&index, Source::IdMappingThenWorktree)
            .map_err(setup)?
            .detach();
        let pipeline = gix::filter::Pipeline::new(repo, stack.clone()).map_err(setup)?;
        let drivers = gix::filter::Pipeline::options(repo).map_err(setup)?.drivers;
        let matches = stack.selected_attribute_matches(["filter", "ident"]);
        Ok(Filters {
            pipeline,
            attributes: gix::AttributeStack::new(stack, repo),
            drivers,
            matches,
            index,
        })
    }

    /// The kind of object ids of the repository.
    pub fn object_hash(&self) -> gix::hash::Kind {
        self.pipeline.repo.object_hash()
    }

    /// `rela`'s `filter` attribute (the driver's name) and whether `ident` is set.
    fn filter_and_ident(&mut self, rela: &BStr) -> (Option<BString>, bool) {
        let Ok(platform) = self.attributes.at_entry(rela, None) else {
            return (None, false);
        };
        self.matches.reset();
        platform.matching_attributes(&mut self.matches);
        let mut found = (None, false);
        for m in self.matches.iter_selected() {
            match m.assignment.name.as_str() {
                "filter" => found.0 = m.assignment.state.as_bstr().map(ToOwned::to_owned),
                "ident" => found.1 = m.assignment.state.is_set(),
                _ => {}
            }
        }
        found
    }

    /// The driver `rela`'s `filter` attribute names, when it cannot run here.
    pub fn missing_driver(&mut self, rela: &BStr) -> Option<MissingDriver> {
        let name = self.filter_and_ident(rela).0?;
        let missing = |why: String| MissingDriver {
            name: name.to_str_lossy().into_owned(),
            why,
            path: rela.to_owned(),
        };
        let Some(driver) = self.drivers.iter().find(|d| d.name == name) else {
            return Some(missing(format!(
                "no `filter.{}.smudge` or `filter.{}.process` is configured",
                name, name
            )));
        };
        let Some(command) = driver.process.as_ref().or(driver.smudge.as_ref()) else {
            // A clean-only driver changes nothing on checkout, as in git.
            return None;
        };
        let program = command
            .split_str(" ")
            .find(|w| !w.is_empty())?
            .to_str_lossy()
            .into_owned();
        (!program_exists(&program)).then(|| missing(format!("its program `{program}` is not installed")))
    }

    /// Write blob `data` (stored at `rela`) to `out` as git's checkout would.
    pub fn to_worktree(&mut self, rela: &BStr, id: ObjectId, data: &[u8], out: &mut impl Write) -> Result<(), Error> {
        use gix::filter::plumbing::pipeline::convert::ToWorktreeOutcome;
        let convert = |source| Error::Convert {
            path: rela.to_owned(),
            source,
        };
        let io = |source| Error::Io {
            path: rela.to_owned(),
            source,
        };
        self.pipeline.driver_context_mut().blob = Some(id);
        // git expands `$Id$` to `$Id: <hex> $` (a space before the closing `$`); gix's ident
        // filter leaves the space out. Ident runs first in git's order (then eol, then the
        // driver), so expanding here and letting gix find no `$Id$` left gives git's bytes.
        let expanded;
        let data = match self.filter_and_ident(rela).1 {
            true if data.find(b"$Id$").is_some() => {
                expanded = data.replace(b"$Id$", format!("$Id: {} $", id.to_hex()));
                &expanded[..]
            }
            _ => data,
        };
        let outcome = self
            .pipeline
            .convert_to_worktree(
                data,
                rela,
                gix::filter::plumbing::pipeline::convert::to_worktree::Options {
                    // One file at a time, in order: a delayed file would need the caller to poll.
                    can_delay: gix::filter::plumbing::driver::apply::Delay::Forbid,
                    ..Default::default()
                },
            )
            .map_err(convert)?;
        match outcome {
            ToWorktreeOutcome::Unchanged(bytes) | ToWorktreeOutcome::Buffer(bytes) => out.write_all(bytes).map_err(io),
            ToWorktreeOutcome::Process(gix::filter::plumbing::driver::apply::MaybeDelayed::Immediate(mut read)) => {
                std::io::copy(&mut read, out).map(drop).map_err(io)
            }
            ToWorktreeOutcome::Process(gix::filter::plumbing::driver::apply::MaybeDelayed::Delayed(_)) => Err(io(
                std::io::Error::other("the filter delayed its output, which was not allowed"),
            )),
        }
    }

    /// The blob id git would store for the regular file `file` at `rela` (`git hash-object
    /// --path`): cleaned by the same rules, hashed as it streams by when no filter applies.
    pub fn blob_id(&mut self, rela: &BStr, file: std::fs::File, len: u64) -> Result<ObjectId, Error> {
        use gix::filter::plumbing::pipeline::convert::ToGitOutcome;
        let io = |source| Error::Io {
            path: rela.to_owned(),
            source,
        };
        let repo = self.pipeline.repo;
        let hash = |read: &mut dyn Read, len: u64| {
            gix::objs::compute_stream_hash(
                repo.object_hash(),
                gix::object::Kind::Blob,
                read,
                len,
                &mut gix::progress::Discard,
                &std::sync::atomic::AtomicBool::new(false),
            )
            .map_err(|err| io(std::io::Error::other(err)))
        };
        let outcome = self
            .pipeline
            .convert_to_git(file, super::checkout::path_from_bytes(rela), &self.index)
            .map_err(|source| Error::Convert {
                path: rela.to_owned(),
                source,
            })?;
        match outcome {
            ToGitOutcome::Unchanged(mut file) => hash(&mut file, len),
            ToGitOutcome::Buffer(bytes) => hash(&mut &*bytes, bytes.len() as u64),
            ToGitOutcome::Process(mut read) => {
                let mut cleaned = Vec::new();
                read.read_to_end(&mut cleaned).map_err(io)?;
                hash(&mut cleaned.as_slice(), cleaned.len() as u64)
            }
        }
    }
}

/// Whether `program` (a path, or a name looked up in `PATH`) is an executable file.
fn program_exists(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(program))))
}
