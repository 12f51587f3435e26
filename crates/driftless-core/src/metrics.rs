//! Prometheus textfile-collector output: `NAME.prom` files that node_exporter picks up.
//!
//! Files are replaced atomically (temp file in the same directory, fsync, rename), so the
//! collector never reads half a file.

use std::fmt::Write as _;
use std::path::Path;

/// One metrics file being built: families of samples, each with HELP and TYPE.
#[derive(Debug, Default)]
pub struct Metrics {
    text: String,
}

/// What every tool reports about its last run on a repo, so monitoring works even when
/// drift-check is not enabled.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub tool: &'a str,
    pub repo: &'a str,
    pub duration_ms: u64,
    pub exit_code: u8,
    pub finished_at: u64,
    pub last_success_at: Option<u64>,
}

impl Run<'_> {
    /// The run's gauges; callers may add families before [`Run::write`].
    pub fn metrics(&self) -> Metrics {
        let labels = [("tool", self.tool), ("repo", self.repo)];
        let mut m = Metrics::new();
        m.family(
            "driftless_run_duration_seconds",
            Kind::Gauge,
            "How long the last run took.",
        )
        .sample(
            "driftless_run_duration_seconds",
            &labels,
            self.duration_ms as f64 / 1000.0,
        )
        .family(
            "driftless_run_exit_code",
            Kind::Gauge,
            "Exit code of the last run (docs/exit-codes.md).",
        )
        .sample("driftless_run_exit_code", &labels, f64::from(self.exit_code))
        .family(
            "driftless_run_timestamp_seconds",
            Kind::Gauge,
            "When the last run finished.",
        )
        .sample("driftless_run_timestamp_seconds", &labels, self.finished_at as f64);
        if let Some(at) = self.last_success_at {
            m.family(
                "driftless_last_success_timestamp_seconds",
                Kind::Gauge,
                "When the last successful run finished.",
            )
            .sample("driftless_last_success_timestamp_seconds", &labels, at as f64);
        }
        m
    }

    /// Write `metrics` as `dir/TOOL-REPO.prom`; a failure is logged, never fatal.
    pub fn write(&self, dir: &Path, id: &crate::state::RepoId, metrics: &Metrics) {
        if let Err(err) = metrics.write(dir, &format!("{}-{}", self.tool, id.file_stem())) {
            tracing::warn!("cannot write metrics to {}: {err}", dir.display());
        }
    }
}

/// The Prometheus metric type of a family.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Metrics {
    /// An empty metrics file.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Start a family; the samples that follow must use `name`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let kind = match kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// Add one sample to the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let val = val.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.text, "{key}=\"{val}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
        self
    }

    /// The file's text.
    pub fn render(&self) -> &str {
        &self.text
    }

    /// Write the file `dir/NAME.prom` atomically.
    pub fn write(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        crate::atomic_file::write(
            &dir.join(format!("{name}.prom")),
            self.text.as_bytes(),
            crate::atomic_file::Durability::Fsync,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_escaped_labels() {
        let mut m = Metrics::new();
        m.family("driftless_run_success", Kind::Gauge, "1 if the last run succeeded.")
            .sample("driftless_run_success", &[("tool", "sync-repo"), ("repo", "a\"b")], 1.0);
        assert_eq!(
            m.render(),
            "# HELP driftless_run_success 1 if the last run succeeded.\n# TYPE driftless_run_success gauge\n\
             driftless_run_success{tool=\"sync-repo\",repo=\"a\\\"b\"} 1\n"
        );
    }
}
