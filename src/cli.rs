//! `ct-record`: the command line, parsed with clap, handed to the Python launcher.
//!
//! Everything after `SCRIPT` or `-m MODULE` belongs to the program, as with `python`, so
//! the command line is first split in two ([`split_argv`]): clap parses only the
//! recorder's part. Nothing here calls `process::exit`: the exit status is returned to the
//! Python shim, which exits through `sys.exit` so interpreter shutdown (atexit, flushing
//! the trace) runs normally.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::tracer::OnError;
use crate::writer::TraceFormat;

#[derive(Parser, Debug)]
#[command(
    name = "ct-record",
    version,
    about = "Record a Python program's execution as a CodeTracer trace.",
    long_about = "Record a Python program's execution as a CodeTracer trace.\n\n\
        The program runs exactly as `python SCRIPT [ARGS]` or `python -m MODULE [ARGS]` would: \
        same sys.argv, sys.path[0], __main__, output, exceptions and exit status. Everything \
        after SCRIPT or `-m MODULE` is passed to the program.",
    override_usage = "ct-record [OPTIONS] SCRIPT [ARGS]...\n       ct-record [OPTIONS] -m MODULE [ARGS]..."
)]
pub struct RecordArgs {
    /// Directory for the trace (created if missing).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./trace-out",
        env = "CODETRACER_TRACE_DIR"
    )]
    pub trace_dir: PathBuf,

    /// Events file format: trace.ctc (compact: the recorder's own records in a zstd stream,
    /// the cheapest to write and the smallest; `python -m ct_recorder.convert` turns it
    /// into trace.bin or trace.json), trace.bin (CodeTracer binary: CBOR records in a zstd
    /// stream) or trace.json (streamed JSON, 30-60 bytes per event: for small runs and
    /// tests).
    #[arg(long, value_enum, default_value_t = crate::session::DEFAULT_FORMAT, env = "CODETRACER_TRACE_FORMAT")]
    pub format: TraceFormat,

    /// Whether `format` was given (on the command line or in its variable), set by [`parse`].
    #[arg(skip)]
    pub format_given: bool,

    /// Stop recording when the events file reaches SIZE bytes (`500M`, `2G`, `1.5GiB`,
    /// `750000000`; K/M/G/T are powers of 1000, KiB/MiB/GiB/TiB powers of 1024), or
    /// `unlimited`. The program runs on unchanged; one warning says where the trace stops.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = DEFAULT_MAX_TRACE_SIZE,
        env = "CODETRACER_MAX_TRACE_SIZE",
        value_parser = parse_max_trace_size
    )]
    pub max_trace_size: MaxTraceSize,

    /// Whether `max_trace_size` was given (on the command line or in its variable).
    #[arg(skip)]
    pub max_trace_size_given: bool,

    /// When the recorder itself fails: `disable` stops recording and lets the program
    /// finish untouched; `abort` raises ct_recorder.RecorderError and exits with status 70.
    #[arg(long, value_enum, default_value_t = OnError::Disable, env = "CODETRACER_ON_RECORDER_ERROR")]
    pub on_recorder_error: OnError,

    /// Recorder log level (the program's own output is never affected). Precedence:
    /// --log-level, then CODETRACER_LOG_LEVEL, then RUST_LOG (tracing directives), then warn.
    #[arg(long, value_enum, default_value_t = LogLevel::Warn, env = "CODETRACER_LOG_LEVEL")]
    pub log_level: LogLevel,

    /// Where `log_level` came from (set by [`parse`]).
    #[arg(skip)]
    pub log_level_source: crate::logging::LevelSource,

    /// Write the recorder's log to FILE instead of stderr.
    #[arg(long, value_name = "FILE", env = "CODETRACER_LOG_FILE")]
    pub log_file: Option<PathBuf>,

    /// A trace filter file, applied after the builtin filter, the project's
    /// `.codetracer/trace-filter.toml` and CODETRACER_TRACE_FILTER. Repeatable; one value
    /// may list several files separated by `::`.
    #[arg(long = "trace-filter", value_name = "PATH")]
    pub trace_filter: Vec<PathBuf>,

    /// Do not load the builtin filter (which skips the standard library and redacts
    /// secret-looking values).
    #[arg(long)]
    pub no_default_filter: bool,

    /// Name module-level code after `__name__` (the globals engine, ADR 0016). The built-in
    /// default comes from rollout.toml; see --print-policy for what is in force and why.
    #[arg(long, overrides_with = "no_module_name_from_globals")]
    pub module_name_from_globals: bool,

    /// Name module-level code with the legacy resolver.
    #[arg(long, overrides_with = "module_name_from_globals")]
    pub no_module_name_from_globals: bool,

    /// Run the other naming engine as a shadow and compare (see docs/shadow-mode.md).
    #[arg(long, overrides_with = "no_shadow_compare")]
    pub shadow_compare: bool,

    /// Do not run a shadow engine (overrides the project config and the environment).
    #[arg(long, overrides_with = "shadow_compare")]
    pub no_shadow_compare: bool,

    /// With --shadow-compare: gather the evidence only, write no trace. Both engines still
    /// compare every new code object; metrics, /metrics, --metrics-push and shadow/ are
    /// produced as usual; the run directory holds no events file. Costs about one callback
    /// per code object (docs/shadow-mode.md). Needs --shadow-compare; cannot be combined
    /// with --format or --max-trace-size (or their variables), which only concern the trace.
    #[arg(long, overrides_with = "no_evidence_only")]
    pub evidence_only: bool,

    /// Write the trace (overrides evidence-only from the project config or the environment).
    #[arg(long, overrides_with = "evidence_only")]
    pub no_evidence_only: bool,

    /// Compare only this fraction of files (`0.1` or `10%`, from 0 to 1), chosen
    /// deterministically by a hash of the file name.
    #[arg(long, value_name = "RATE", env = "CODETRACER_SHADOW_SAMPLE", value_parser = parse_sample)]
    pub shadow_sample: Option<String>,

    /// Stop comparing once the shadow engine has used this fraction of the run's time
    /// (`0.05` or `5%`; more than 0, at most 1).
    #[arg(long, value_name = "FRACTION", env = "CODETRACER_SHADOW_BUDGET", value_parser = parse_budget)]
    pub shadow_budget: Option<String>,

    /// Serve Prometheus metrics on HOST:PORT (`:PORT` means 127.0.0.1; port 0 picks a free
    /// port and prints it).
    #[arg(long, value_name = "HOST:PORT", env = "CODETRACER_METRICS_ADDR")]
    pub metrics_addr: Option<String>,

    /// If the metrics address cannot be served: `fail` before the program starts, or
    /// `continue` without /metrics.
    #[arg(long, value_enum, default_value_t = MetricsOnError::Fail, env = "CODETRACER_METRICS_ON_ERROR")]
    pub metrics_on_error: MetricsOnError,

    /// Keep serving /metrics for SECONDS after the program ends, for a last scrape (a decimal
    /// number from 0 to 3600).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "CODETRACER_METRICS_LINGER",
        value_parser = parse_linger
    )]
    pub metrics_linger: Option<Duration>,

    /// Push the final metrics to a Prometheus Pushgateway at URL (job `ct-record`, label
    /// run_id) when the program ends.
    #[arg(long, value_name = "URL", env = "CODETRACER_METRICS_PUSH")]
    pub metrics_push: Option<String>,

    /// No end-of-run summary on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Explain the trace filters' decision for TARGET (a file, or a dotted module name found
    /// on sys.path) under the selected engine: the scope context, every rule that matched,
    /// in order, and the final decision. Runs nothing.
    #[arg(long, value_name = "FILE_OR_MODULE")]
    pub explain_filter: Option<String>,

    /// Print the effective policy (each value and the layer that set it) and exit.
    #[arg(long)]
    pub print_policy: bool,

    /// Print a shell completion script for ct-record and exit (an option, not a subcommand,
    /// so that it cannot be taken for a program called `completions`).
    #[arg(long, value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,

    /// Run a library module as the program, like `python -m MODULE`.
    #[arg(short = 'm', value_name = "MODULE", conflicts_with = "script")]
    pub module: Option<String>,

    /// The program to run, like `python SCRIPT`.
    #[arg(value_name = "SCRIPT", required_unless_present_any = ["module", "print_policy", "explain_filter", "completions"])]
    pub script: Option<PathBuf>,

    /// Arguments passed to the program.
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<OsString>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MetricsOnError {
    Fail,
    Continue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `--max-trace-size`'s default: 5 GB (decimal) holds tens of millions of events, more than
/// anyone steps through, and stops a runaway recording (a whole test suite) long before it
/// fills a disk (docs/recording.md, "Trace size cap").
pub const DEFAULT_MAX_TRACE_SIZE: &str = "5G";

/// `--max-trace-size`: the events file's cap in bytes, or none (`unlimited`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxTraceSize(pub Option<u64>);

/// `--max-trace-size SIZE`: bytes with an optional unit, SI (`K`, `M`, `G`, `T`, also with `B`:
/// powers of 1000) or IEC (`KiB`, `MiB`, `GiB`, `TiB`: powers of 1024), case-insensitive, a
/// fraction allowed (`1.5GiB`); or `unlimited` / `none` for no cap. Zero is refused: it
/// would record nothing, and `0` meaning "no limit" in some tools makes it ambiguous.
pub fn parse_max_trace_size(text: &str) -> Result<MaxTraceSize, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("none") {
        return Ok(MaxTraceSize(None));
    }
    let hint = "expected a size such as 500M, 2G or 1.5GiB (K/M/G/T = 1000^n, \
                KiB/MiB/GiB/TiB = 1024^n), or 'unlimited'";
    // A number first (no sign, no word such as `inf`): one message for every value that is
    // not a size at all.
    if !t.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return Err(hint.to_owned());
    }
    match parse_size::parse_size(t) {
        Ok(0) => Err(
            "a cap of 0 bytes would record nothing; to record without a cap, \
                      give 'unlimited'"
                .to_owned(),
        ),
        Ok(n) => Ok(MaxTraceSize(Some(n))),
        Err(parse_size::Error::PosOverflow) => {
            Err(format!("too large (at most {} bytes); {hint}", u64::MAX))
        }
        Err(_) => Err(hint.to_owned()),
    }
}

/// The longest `--metrics-linger`: an hour is far beyond any scrape interval, and a longer
/// wait is a typo rather than a plan.
pub const MAX_METRICS_LINGER_SECONDS: u64 = 3600;

/// `--metrics-linger SECONDS`: a decimal number of seconds (`2`, `0.5`, `1e1`), from 0 to
/// [`MAX_METRICS_LINGER_SECONDS`]. Hex, `inf`, `nan` and negative values are refused.
pub fn parse_linger(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let v: f64 = t
        .parse()
        .ok()
        .filter(|_| {
            t.bytes()
                .all(|b| b.is_ascii_digit() || b".eE+-".contains(&b))
        })
        .ok_or_else(|| "expected a number of seconds such as 2 or 0.5".to_owned())?;
    linger_from_seconds(v)
}

/// A linger given as a float (the Python API): the same range as [`parse_linger`].
pub fn linger_from_seconds(v: f64) -> Result<Duration, String> {
    if !(v.is_finite() && (0.0..=MAX_METRICS_LINGER_SECONDS as f64).contains(&v)) {
        return Err(format!(
            "must be from 0 to {MAX_METRICS_LINGER_SECONDS} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

fn parse_sample(text: &str) -> Result<String, String> {
    ct_shadow::Sampler::parse(text)
        .map(|_| text.trim().to_owned())
        .map_err(|e| e.reason.to_owned())
}

fn parse_budget(text: &str) -> Result<String, String> {
    ct_shadow::Budget::parse(text)
        .map(|_| text.trim().to_owned())
        .map_err(|e| e.reason.to_owned())
}

/// Splits `argv` into the recorder's part (with argv[0]) and the program's arguments.
/// The recorder's part ends with `SCRIPT` or `-m MODULE`.
pub fn split_argv(cmd: &clap::Command, argv: &[OsString]) -> (Vec<OsString>, Vec<OsString>) {
    let mut long_with_value = HashSet::new();
    let mut short_with_value = HashSet::new();
    for arg in cmd.get_arguments() {
        if arg.is_positional() || !arg.get_action().takes_values() {
            continue;
        }
        if let Some(l) = arg.get_long() {
            long_with_value.insert(format!("--{l}"));
        }
        if let Some(s) = arg.get_short() {
            short_with_value.insert(s);
        }
    }
    let mut ours: Vec<OsString> = argv.iter().take(1).cloned().collect();
    let mut i = 1;
    while i < argv.len() {
        let raw = &argv[i];
        // Options are ASCII; a non-UTF-8 argument can only be a value or the program.
        let lossy = raw.to_string_lossy();
        let a: &str = &lossy;
        if a == "--" {
            ours.push(raw.clone());
            if let Some(script) = argv.get(i + 1) {
                ours.push(script.clone());
            }
            return (ours, argv.iter().skip(i + 2).cloned().collect());
        }
        if a == "-m" {
            ours.extend(argv[i..argv.len().min(i + 2)].iter().cloned());
            return (ours, argv.iter().skip(i + 2).cloned().collect());
        }
        if let Some(module) = a.strip_prefix("-m") {
            ours.push("-m".into());
            ours.push(
                raw.to_str()
                    .map(|_| OsString::from(module))
                    .unwrap_or_else(|| raw.clone()),
            );
            return (ours, argv.iter().skip(i + 1).cloned().collect());
        }
        if a.starts_with("--") {
            ours.push(raw.clone());
            if !a.contains('=') && long_with_value.contains(a) {
                if let Some(v) = argv.get(i + 1) {
                    ours.push(v.clone());
                    i += 1;
                }
            }
        } else if a.len() > 1 && a.starts_with('-') {
            ours.push(raw.clone());
            let last = a.chars().last().unwrap_or('-');
            if a.len() == 2 && short_with_value.contains(&last) {
                if let Some(v) = argv.get(i + 1) {
                    ours.push(v.clone());
                    i += 1;
                }
            }
        } else {
            ours.push(raw.clone());
            return (ours, argv.iter().skip(i + 1).cloned().collect());
        }
        i += 1;
    }
    (ours, Vec::new())
}

/// Why the command line could not be parsed: clap's own error, or a bad environment value
/// (named by its variable: the user never typed the flag).
#[derive(Debug)]
pub enum ParseError {
    Clap(clap::Error),
    Env { var: String, message: String },
}

impl ParseError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ParseError::Clap(e) => e.exit_code(),
            ParseError::Env { .. } => 2,
        }
    }

    /// Prints the error (help and version go to stdout, as clap does).
    pub fn print(&self) {
        match self {
            ParseError::Clap(e) => {
                let _ = e.print();
            }
            ParseError::Env { message, .. } => {
                crate::session::say(&format!(
                    "error: {message}\n\nFor more information, try '--help'."
                ));
            }
        }
    }
}

pub fn parse(argv: &[OsString]) -> Result<RecordArgs, ParseError> {
    let mut cmd = RecordArgs::command();
    // An empty or all-blank variable counts as unset, for every CODETRACER_* variable (as
    // for the policy variables, and as CPython does for PYTHON*): `VAR= ct-record ...` is how
    // a shell clears an inherited variable for one command.
    let blank: Vec<clap::Id> = cmd
        .get_arguments()
        .filter(|a| {
            a.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|v| v.to_string_lossy().trim().is_empty())
        })
        .map(|a| a.get_id().clone())
        .collect();
    for id in blank {
        cmd = cmd.mut_arg(id, |a| a.env(None));
    }
    let (ours, program_args) = split_argv(&cmd, argv);
    let matches = match cmd.clone().try_get_matches_from(&ours) {
        Ok(m) => m,
        Err(e) => return Err(env_error(&cmd, &ours, &e).unwrap_or(ParseError::Clap(e))),
    };
    let mut parsed = RecordArgs::from_arg_matches(&matches).map_err(ParseError::Clap)?;
    parsed.log_level_source = match matches.value_source("log_level") {
        Some(clap::parser::ValueSource::CommandLine) => crate::logging::LevelSource::CommandLine,
        Some(clap::parser::ValueSource::EnvVariable) => crate::logging::LevelSource::Environment,
        _ => crate::logging::LevelSource::Default,
    };
    let given = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        )
    };
    parsed.format_given = given("format");
    parsed.max_trace_size_given = given("max_trace_size");
    parsed.args.extend(program_args);
    Ok(parsed)
}

/// When clap refused a value that came from an environment variable (the flag is not on the
/// command line), the same error naming the variable.
fn env_error(cmd: &clap::Command, ours: &[OsString], e: &clap::Error) -> Option<ParseError> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use std::error::Error as _;
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let flag = shown.split([' ', '=']).next()?.to_owned();
    let arg = cmd
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))?;
    let given = ours.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == flag.as_str() || a.starts_with(&format!("{flag}="))
    });
    if given {
        return None;
    }
    let var = arg.get_env()?.to_string_lossy().into_owned();
    let value = std::env::var_os(&var)?.to_string_lossy().into_owned();
    let why = match (e.kind(), e.source()) {
        (ErrorKind::ValueValidation, Some(reason)) => reason.to_string(),
        _ => {
            let valid: Vec<String> = arg
                .get_possible_values()
                .iter()
                .map(|v| v.get_name().to_owned())
                .collect();
            format!("possible values: {}", valid.join(", "))
        }
    };
    Some(ParseError::Env {
        message: format!("invalid value '{value}' in {var} (the variable for {flag}): {why}"),
        var,
    })
}

/// `--explain-filter TARGET`: the filter decision for one file or module, explained.
fn explain_filter(
    py: Python<'_>,
    target: &str,
    args: &RecordArgs,
    policy: &crate::policy::Policy,
) -> PyResult<i32> {
    use crate::filters::{FilterChain, LoadOptions};
    use crate::naming::{CodeFacts, GlobalsName};
    let cwd = std::env::current_dir()?;
    let as_path = cwd.join(target);
    let (file, module_hint) = if as_path.is_file() {
        (as_path, None)
    } else {
        match find_module_file(py, target)? {
            Some(f) => (f, Some(target.to_owned())),
            None => {
                eprintln!("ct-record: error: --explain-filter: {target:?} is neither a file nor a module found on sys.path");
                return Ok(2);
            }
        }
    };
    let program_dir = file.parent().map(|p| p.to_path_buf()).unwrap_or(cwd);
    let chain = match FilterChain::load(&LoadOptions {
        program_dir: Some(program_dir),
        env_value: std::env::var("CODETRACER_TRACE_FILTER")
            .ok()
            .filter(|v| !v.trim().is_empty()),
        cli_paths: args.trace_filter.clone(),
        include_builtin: !args.no_default_filter,
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ct-record: error: {e}");
            return Ok(2);
        }
    };
    let (engine, layer) = match crate::session::primary_engine(policy) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ct-record: error: {e}");
            return Ok(2);
        }
    };
    let filename = file.to_string_lossy().into_owned();
    // `__name__` is only known when the code runs; a module named on the command line is
    // explained with that name, a file with none (the engine's fallbacks then apply).
    let globals_name = module_hint
        .clone()
        .map(GlobalsName::Str)
        .unwrap_or(GlobalsName::Missing);
    let facts = CodeFacts::new(
        filename.as_str(),
        crate::naming::MODULE_QUALNAME,
        globals_name,
        module_hint.clone(),
    );
    let mut scoping = crate::tracer::scope::Scoping::new(chain);
    if engine == crate::naming::Engine::Legacy {
        scoping.legacy_filter = crate::naming::legacy_engine().map(|e| e.filter_namer(py));
    }
    let modules = crate::naming::PySysModules::new();
    let (ctx, _) = scoping.decide(engine, &facts, &modules);
    let mut out = format!(
        "target:  {target}\nengine:  {} (chosen by {layer})\n{}\n",
        engine.as_str(),
        scoping.chain.explain(&ctx)
    );
    if module_hint.is_none() {
        out.push_str(&format!(
            "note: explained as an imported module; run as the main script (`ct-record {target}`), \
             its module name is `__main__` under both engines, and `pkg:` rules see that name.\n"
        ));
    }
    Ok(print_out(&out))
}

/// The source file of a dotted module name on `sys.path`, found by looking at the file
/// system only (nothing is imported).
fn find_module_file(py: Python<'_>, module: &str) -> PyResult<Option<PathBuf>> {
    if !crate::naming::is_valid_dotted_name(module) {
        return Ok(None);
    }
    let rel: PathBuf = module.split('.').collect();
    let sys_path: Vec<Bound<'_, PyAny>> = py
        .import("sys")?
        .getattr("path")?
        .try_iter()?
        .collect::<PyResult<_>>()?;
    for entry in sys_path {
        let Ok(entry) = entry.extract::<String>() else {
            continue;
        };
        let base = if entry.is_empty() {
            std::env::current_dir()?
        } else {
            PathBuf::from(entry)
        };
        for candidate in [
            base.join(&rel).with_extension("py"),
            base.join(&rel).join("__init__.py"),
        ] {
            if candidate.is_file() {
                return Ok(Some(candidate));
            }
        }
    }
    Ok(None)
}

/// Writes a command's output to stdout; a closed pipe (`| head`) ends quietly with status
/// 0 instead of a panic. Returns the exit status.
/// Writes `shell`'s completion script for `cmd` to stdout; returns the exit status.
pub fn print_completions(shell: clap_complete::Shell, mut cmd: clap::Command, name: &str) -> i32 {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    print_out(&String::from_utf8_lossy(&script))
}

pub fn print_out(text: &str) -> i32 {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("ct-record: error: writing to stdout: {e}");
            1
        }
    }
}

/// Usage errors of evidence-only mode: it needs shadow comparison, and options that only
/// concern the trace make no sense without one.
fn evidence_only_conflicts(
    policy: &crate::policy::Policy,
    args: &RecordArgs,
) -> Result<(), String> {
    policy.check()?;
    let trace_only = [
        ("--format", args.format_given),
        ("--max-trace-size", args.max_trace_size_given),
    ];
    for (option, given) in trace_only {
        if policy.evidence_only.value && given {
            return Err(format!(
                "{option} cannot be combined with evidence-only mode ({} from {}): an \
                 evidence-only run writes no trace",
                policy
                    .evidence_only
                    .source
                    .as_deref()
                    .unwrap_or("evidence_only"),
                policy.evidence_only.layer
            ));
        }
    }
    Ok(())
}

/// `--x` / `--no-x` (clap keeps only the last one given) as an optional override.
fn flag_pair(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// The whole `ct-record` command. Returns the process exit status.
pub fn main(py: Python<'_>, argv: Vec<OsString>) -> PyResult<i32> {
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            e.print();
            return Ok(e.exit_code());
        }
    };
    if let Err(msg) = crate::logging::init(
        args.log_level,
        args.log_level_source,
        args.log_file.as_deref(),
    ) {
        eprintln!("ct-record: {msg}");
        return Ok(2);
    }
    if let Some(shell) = args.completions {
        return Ok(print_completions(shell, RecordArgs::command(), "ct-record"));
    }
    let program_dir = match &args.script {
        Some(script) if args.module.is_none() => {
            let p = script.as_path();
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir()?.join(p)
            };
            if abs.is_dir() {
                abs
            } else {
                // As python computes sys.path[0]: the script's directory, symlinks resolved.
                let real = std::fs::canonicalize(&abs).unwrap_or(abs);
                real.parent().map(|d| d.to_path_buf()).unwrap_or(real)
            }
        }
        _ => std::env::current_dir()?,
    };
    let overrides = crate::policy::CliOverrides {
        module_name_from_globals: flag_pair(
            args.module_name_from_globals,
            args.no_module_name_from_globals,
        ),
        shadow_compare: flag_pair(args.shadow_compare, args.no_shadow_compare),
        evidence_only: flag_pair(args.evidence_only, args.no_evidence_only),
    };
    let policy = match crate::session::build_policy(&program_dir, Some(&overrides)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ct-record: error: {e}");
            return Ok(2);
        }
    };
    if args.print_policy {
        // What a recording would use, so a build without the legacy engine shows its
        // fallback and refuses an explicit request for legacy exactly as a recording does.
        return match crate::session::engines_in_force(&policy) {
            Ok((primary, chosen_by, shadow)) => Ok(print_out(&policy.render_table_with(
                primary.as_str(),
                &chosen_by,
                shadow.map(crate::naming::Engine::as_str),
            ))),
            Err(e) => {
                eprintln!("ct-record: error: {e}");
                Ok(2)
            }
        };
    }
    if let Some(target) = &args.explain_filter {
        return explain_filter(py, target, &args, &policy);
    }
    if let Err(e) = evidence_only_conflicts(&policy, &args) {
        eprintln!("ct-record: error: {e}");
        return Ok(2);
    }
    let evidence_only = policy.evidence_only.value;
    crate::session::set_pending_policy(policy);
    let opts = PyDict::new(py);
    match (&args.module, &args.script) {
        (Some(m), _) => {
            opts.set_item("kind", "module")?;
            opts.set_item("target", m)?;
        }
        (None, Some(s)) => {
            opts.set_item("kind", "script")?;
            opts.set_item("target", s.as_os_str())?;
        }
        (None, None) => unreachable!("clap requires SCRIPT unless -m or --print-policy is given"),
    }
    opts.set_item("args", &args.args)?;
    let filters: Vec<String> = args
        .trace_filter
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    opts.set_item("trace_filters", filters)?;
    opts.set_item("default_filter", !args.no_default_filter)?;
    let rec = PyDict::new(py);
    rec.set_item("shadow_sample", &args.shadow_sample)?;
    rec.set_item("shadow_budget", &args.shadow_budget)?;
    rec.set_item("metrics_addr", &args.metrics_addr)?;
    rec.set_item(
        "metrics_required",
        args.metrics_on_error == MetricsOnError::Fail,
    )?;
    rec.set_item(
        "metrics_linger",
        args.metrics_linger.unwrap_or_default().as_secs_f64(),
    )?;
    rec.set_item("metrics_push", &args.metrics_push)?;
    rec.set_item("quiet", args.quiet)?;
    // Evidence-only runs have no trace to cap (giving a cap is refused above).
    if !evidence_only {
        match args.max_trace_size.0 {
            Some(bytes) => rec.set_item("max_trace_size", bytes)?,
            None => rec.set_item("max_trace_size", "unlimited")?,
        }
    }
    rec.set_item("command", &argv)?;
    opts.set_item("recorder", rec)?;
    opts.set_item("trace_dir", args.trace_dir.as_os_str())?;
    // Evidence-only runs have no trace format (giving one is refused above).
    opts.set_item("format", (!evidence_only).then(|| args.format.as_str()))?;
    opts.set_item(
        "on_error",
        match args.on_recorder_error {
            OnError::Disable => "disable",
            OnError::Abort => "abort",
        },
    )?;
    let launcher = py.import("ct_recorder._launcher")?;
    launcher.call_method1("main", (opts,))?.extract()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_format_defaults_to_compact() {
        assert!(
            std::env::var_os("CODETRACER_TRACE_FORMAT").is_none(),
            "unset CODETRACER_TRACE_FORMAT to run this test"
        );
        let a = parse(&s(&["ct-record", "app.py"])).unwrap();
        assert_eq!(a.format, crate::session::DEFAULT_FORMAT);
        assert_eq!(a.format, TraceFormat::Compact);
        assert!(!a.format_given);
        let a = parse(&s(&["ct-record", "--format", "json", "app.py"])).unwrap();
        assert_eq!((a.format, a.format_given), (TraceFormat::Json, true));
    }

    #[test]
    fn options_after_the_script_belong_to_the_script() {
        let a = parse(&s(&[
            "ct-record",
            "--format",
            "binary",
            "app.py",
            "--format",
            "x",
            "-m",
        ]))
        .unwrap();
        assert_eq!(a.script, Some(PathBuf::from("app.py")));
        assert_eq!(a.format, TraceFormat::Binary);
        assert_eq!(a.args, s(&["--format", "x", "-m"]));
    }

    #[test]
    fn dash_m_takes_the_module_and_the_rest() {
        let a = parse(&s(&[
            "ct-record",
            "--trace-dir=t",
            "-m",
            "pkg.mod",
            "--trace-dir",
            "y",
        ]))
        .unwrap();
        assert_eq!(a.module.as_deref(), Some("pkg.mod"));
        assert_eq!(a.trace_dir, PathBuf::from("t"));
        assert_eq!(a.args, s(&["--trace-dir", "y"]));
        let b = parse(&s(&["ct-record", "-mpkg", "a"])).unwrap();
        assert_eq!(b.module.as_deref(), Some("pkg"));
        assert_eq!(b.args, s(&["a"]));
    }

    #[test]
    fn double_dash_ends_recorder_options() {
        let a = parse(&s(&["ct-record", "--", "-weird.py", "x"])).unwrap();
        assert_eq!(a.script, Some(PathBuf::from("-weird.py")));
        assert_eq!(a.args, s(&["x"]));
    }

    #[test]
    fn unknown_option_is_a_usage_error_with_status_2() {
        let e = parse(&s(&["ct-record", "--no-such-flag", "app.py"])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn trace_sizes_take_si_and_iec_units() {
        let bytes = |t: &str| parse_max_trace_size(t).map(|m| m.0);
        assert_eq!(bytes("750000000"), Ok(Some(750_000_000)));
        assert_eq!(bytes("500M"), Ok(Some(500_000_000)));
        assert_eq!(bytes("500MB"), Ok(Some(500_000_000)));
        assert_eq!(bytes("2g"), Ok(Some(2_000_000_000)));
        assert_eq!(bytes("1.5GiB"), Ok(Some(1_610_612_736)));
        assert_eq!(bytes("64KiB"), Ok(Some(65_536)));
        assert_eq!(bytes(" 1 T "), Ok(Some(1_000_000_000_000)));
        assert_eq!(bytes("unlimited"), Ok(None));
        assert_eq!(bytes("NONE"), Ok(None));
        assert_eq!(
            bytes(DEFAULT_MAX_TRACE_SIZE),
            Ok(Some(5_000_000_000)),
            "the documented default"
        );
    }

    #[test]
    fn bad_trace_sizes_are_refused_with_the_reason() {
        for bad in [
            "", "-1", "-5M", "abc", "5X", "0x10", "inf", "nan", "1e30", "M",
        ] {
            let e = parse_max_trace_size(bad).unwrap_err();
            assert!(e.contains("500M") || e.contains("too large"), "{bad}: {e}");
        }
        assert!(parse_max_trace_size("0").unwrap_err().contains("unlimited"));
        assert!(parse_max_trace_size("0K")
            .unwrap_err()
            .contains("unlimited"));
        let e = parse(&s(&["ct-record", "--max-trace-size", "lots", "app.py"])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn missing_target_is_a_usage_error() {
        let e = parse(&s(&["ct-record", "--format", "json"])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
