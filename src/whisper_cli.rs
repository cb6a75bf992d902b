//! `charcoal whisper ...`: the everyday jobs of whisper's own scripts, with their output
//! formats (spec `whisper-carbon.md` section 10, `cli.md`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use charcoal_store::{
    AggregationMethod, CreateOptions, ResizeOptions, Retention, Whisper, WhisperError,
};
use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum WhisperCommand {
    /// Create a whisper file (like whisper-create.py).
    Create(CreateArgs),
    /// Show a file's header (like whisper-info.py).
    Info(InfoArgs),
    /// Print a time range (like whisper-fetch.py).
    Fetch(FetchArgs),
    /// Store points (like whisper-update.py).
    Update(UpdateArgs),
    /// Print header and every slot (like whisper-dump.py).
    Dump(DumpArgs),
    /// Change the archives of a file, or of every file under a directory (like whisper-resize.py).
    Resize(ResizeArgs),
    /// Copy points from SRC into the gaps of DST, files or directories (like whisper-fill.py).
    Fill(PairArgs),
    /// Copy every point of SRC into DST, files or directories (like whisper-merge.py).
    Merge(MergeArgs),
    /// Change the aggregation method and xFilesFactor (like whisper-set-aggregation-method.py).
    SetAggregationMethod(SetAggregationArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    path: PathBuf,
    /// Archives as PRECISION:RETENTION (`60:1440`, `10s:6h`), also comma-separated.
    #[arg(required = true)]
    retentions: Vec<String>,
    #[arg(long = "xff", visible_alias = "xFilesFactor", default_value_t = 0.5)]
    x_files_factor: f64,
    #[arg(long, visible_alias = "aggregationMethod", default_value = "average")]
    aggregation_method: String,
    /// Leave the data region unallocated.
    #[arg(long)]
    sparse: bool,
    /// Replace an existing file.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    path: PathBuf,
    /// Print only this field (aggregationMethod, maxRetention, xFilesFactor, fileSize, archives).
    field: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Drop {
    Nulls,
    Zeroes,
    Empty,
}

impl Drop {
    fn keeps(self, value: Option<f64>) -> bool {
        match self {
            Drop::Nulls => value.is_some(),
            Drop::Zeroes => value != Some(0.0),
            Drop::Empty => value.is_some_and(|v| v != 0.0),
        }
    }
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    path: PathBuf,
    /// Start: unix seconds or any Graphite time form (`-1h`, `now-30min`, `midnight`,
    /// `HH:MM_YYYYMMDD`, `YYYYMMDD`), UTC; default 24 h ago.
    #[arg(long, allow_hyphen_values = true)]
    from: Option<String>,
    /// End; default now.
    #[arg(long, allow_hyphen_values = true)]
    until: Option<String>,
    /// The clock, for reproducible output (unix seconds); default the real time.
    #[arg(long)]
    now: Option<i64>,
    #[arg(long)]
    json: bool,
    /// Leave out null values, zero values, or both.
    #[arg(long, value_enum)]
    drop: Option<Drop>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    path: PathBuf,
    /// TIMESTAMP:VALUE pairs (`N:` means now); read one per line from stdin when absent.
    points: Vec<String>,
    /// The clock (unix seconds); default the real time.
    #[arg(long)]
    now: Option<i64>,
    /// Apply all points as one batch (update_many), even a single one.
    #[arg(long)]
    batch: bool,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    path: PathBuf,
    #[arg(long)]
    json: bool,
    /// Print `timestamp:value` lines, as whisper-update reads them.
    #[arg(short, long)]
    raw: bool,
}

#[derive(Debug, Args)]
pub struct ResizeArgs {
    /// A whisper file, or a directory whose .wsp files are all resized.
    path: PathBuf,
    #[arg(required = true)]
    retentions: Vec<String>,
    #[arg(long = "xff", visible_alias = "xFilesFactor")]
    x_files_factor: Option<f64>,
    #[arg(long, visible_alias = "aggregationMethod")]
    aggregation_method: Option<String>,
    /// Re-aggregate old points into the new archives instead of copying them.
    #[arg(long)]
    aggregate: bool,
    /// Remove the `.bak` copy of each old file afterwards.
    #[arg(long)]
    nobackup: bool,
    #[arg(long)]
    sparse: bool,
    #[arg(long)]
    now: Option<i64>,
}

#[derive(Debug, Args)]
pub struct PairArgs {
    src: PathBuf,
    dst: PathBuf,
    #[arg(long)]
    now: Option<i64>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    src: PathBuf,
    dst: PathBuf,
    #[arg(long, allow_hyphen_values = true)]
    from: Option<String>,
    #[arg(long, allow_hyphen_values = true)]
    until: Option<String>,
    #[arg(long)]
    now: Option<i64>,
}

#[derive(Debug, Args)]
pub struct SetAggregationArgs {
    path: PathBuf,
    method: String,
    x_files_factor: Option<f64>,
}

pub fn run(command: WhisperCommand) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match command {
        WhisperCommand::Create(a) => create(a, &mut out)?,
        WhisperCommand::Info(a) => info(a, &mut out)?,
        WhisperCommand::Fetch(a) => fetch(a, &mut out)?,
        WhisperCommand::Update(a) => update(a)?,
        WhisperCommand::Dump(a) => dump(a, &mut out)?,
        WhisperCommand::Resize(a) => resize(a, &mut out)?,
        WhisperCommand::Fill(a) => fill(a, &mut out)?,
        WhisperCommand::Merge(a) => merge(a, &mut out)?,
        WhisperCommand::SetAggregationMethod(a) => set_aggregation(a, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A Graphite time specification (unix seconds, `now`, `-1h`, `now-30min`, `midnight`,
/// `12:00_20261127`, `20261127`, ...), read in UTC.
fn parse_time(text: &str, now: i64) -> Result<i64> {
    charcoal_web::parse_time(text, None, now).with_context(|| format!("invalid time {text:?}"))
}

fn parse_retention_args(args: &[String]) -> Result<Vec<Retention>> {
    args.iter()
        .flat_map(|a| a.split(','))
        .map(|r| r.parse::<Retention>().map_err(anyhow::Error::from))
        .collect()
}

fn create(a: CreateArgs, out: &mut impl Write) -> Result<()> {
    let retentions = parse_retention_args(&a.retentions)?;
    let aggregation: AggregationMethod = a.aggregation_method.parse()?;
    if a.overwrite && a.path.exists() {
        writeln!(out, "Overwriting existing file: {}", a.path.display())?;
        std::fs::remove_file(&a.path).with_context(|| a.path.display().to_string())?;
    }
    Whisper::create(
        &a.path,
        &retentions,
        CreateOptions {
            x_files_factor: a.x_files_factor,
            aggregation,
            sparse: a.sparse,
        },
    )?;
    let size = std::fs::metadata(&a.path)?.len();
    writeln!(out, "Created: {} ({size} bytes)", a.path.display())?;
    Ok(())
}

fn info(a: InfoArgs, out: &mut impl Write) -> Result<()> {
    let file = Whisper::open_read_only(&a.path)?;
    let h = file.header();
    let size = std::fs::metadata(&a.path)?.len();
    let archives: Vec<serde_json::Value> = h
        .archives
        .iter()
        .map(|x| {
            serde_json::json!({
                "offset": x.offset,
                "secondsPerPoint": x.step,
                "points": x.points,
                "retention": x.retention(),
                "size": x.size(),
            })
        })
        .collect();
    let xff = f64::from(h.x_files_factor);
    if let Some(field) = a.field {
        match field.as_str() {
            "aggregationMethod" => writeln!(out, "{}", h.aggregation)?,
            "maxRetention" => writeln!(out, "{}", h.max_retention)?,
            "xFilesFactor" => writeln!(out, "{}", charcoal_web::python_repr(xff))?,
            "fileSize" => writeln!(out, "{size}")?,
            "archives" => writeln!(out, "{}", serde_json::Value::from(archives))?,
            other => bail!(
                "Unknown field \"{other}\". Valid fields are \
                 aggregationMethod,maxRetention,xFilesFactor,archives,fileSize"
            ),
        }
        return Ok(());
    }
    if a.json {
        // Key order and indentation as whisper-info.py's json.dumps(indent=2).
        let doc = serde_json::json!({
            "aggregationMethod": h.aggregation.name(),
            "maxRetention": h.max_retention,
            "xFilesFactor": xff,
            "archives": archives,
            "fileSize": size,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(());
    }
    writeln!(out, "aggregationMethod: {}", h.aggregation)?;
    writeln!(out, "maxRetention: {}", h.max_retention)?;
    writeln!(out, "xFilesFactor: {}", charcoal_web::python_repr(xff))?;
    writeln!(out, "fileSize: {size}")?;
    writeln!(out)?;
    for (i, x) in h.archives.iter().enumerate() {
        writeln!(out, "Archive {i}")?;
        writeln!(out, "offset: {}", x.offset)?;
        writeln!(out, "secondsPerPoint: {}", x.step)?;
        writeln!(out, "points: {}", x.points)?;
        writeln!(out, "retention: {}", x.retention())?;
        writeln!(out, "size: {}", x.size())?;
        writeln!(out)?;
    }
    Ok(())
}

fn python_list(values: impl Iterator<Item = Option<f64>>) -> String {
    let items: Vec<String> = values
        .map(|v| v.map_or_else(|| "null".to_owned(), charcoal_web::python_repr))
        .collect();
    format!("[{}]", items.join(", "))
}

fn fetch(a: FetchArgs, out: &mut impl Write) -> Result<()> {
    let now = a.now.unwrap_or_else(unix_now);
    let from = match &a.from {
        Some(t) => parse_time(t, now)?,
        None => now - 86_400,
    };
    let until = match &a.until {
        Some(t) => parse_time(t, now)?,
        None => now,
    };
    let file = Whisper::open_read_only(&a.path)?;
    let Some(series) = file.fetch(from, until, now)? else {
        bail!("No data in selected timerange");
    };
    let keep = |v: Option<f64>| a.drop.is_none_or(|d| d.keeps(v));
    if a.json {
        let values = python_list(series.values.iter().copied().filter(|v| keep(*v)));
        writeln!(
            out,
            "{{\n    \"start\" : {},\n    \"end\" : {},\n    \"step\" : {},\n    \"values\" : {}\n  }}",
            series.start, series.end, series.step, values
        )?;
        return Ok(());
    }
    let mut t = series.start;
    for &value in &series.values {
        if keep(value) {
            let text = value.map_or_else(|| "None".to_owned(), charcoal_web::python_percent_f);
            writeln!(out, "{t}\t{text}")?;
        }
        t += series.step;
    }
    Ok(())
}

fn parse_point(text: &str, now: i64) -> Result<(i64, f64)> {
    let (t, v) = text
        .trim()
        .split_once(':')
        .with_context(|| format!("invalid point {text:?}: expected TIMESTAMP:VALUE"))?;
    let timestamp = if t == "N" {
        now
    } else {
        // whisper int()s the timestamp; accept a fractional one and truncate it.
        t.parse::<i64>()
            .or_else(|_| t.parse::<f64>().map(|f| f.trunc() as i64))
            .with_context(|| format!("invalid timestamp {t:?} in {text:?}"))?
    };
    let value = v
        .trim()
        .parse::<f64>()
        .with_context(|| format!("invalid value {v:?} in {text:?}"))?;
    Ok((timestamp, value))
}

fn update(a: UpdateArgs) -> Result<()> {
    let now = a.now.unwrap_or_else(unix_now);
    let mut lines = a.points;
    if lines.is_empty() {
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            if !line.trim().is_empty() {
                lines.push(line);
            }
        }
    }
    let mut points = lines
        .iter()
        .map(|p| parse_point(p, now))
        .collect::<Result<Vec<_>>>()?;
    let mut file = Whisper::open(&a.path)?;
    match points.as_slice() {
        [(t, v)] if !a.batch => file.update(*t, *v, now)?,
        _ => {
            let outcome = file.update_many(&mut points, now)?;
            if outcome.dropped > 0 {
                eprintln!(
                    "{} point(s) older than the file's retention were dropped",
                    outcome.dropped
                );
            }
        }
    }
    Ok(())
}

fn dump(a: DumpArgs, out: &mut impl Write) -> Result<()> {
    let file = Whisper::open_read_only(&a.path)?;
    let h = file.header();
    if a.json {
        let archives: Vec<serde_json::Value> = h
            .archives
            .iter()
            .enumerate()
            .map(|(i, x)| -> Result<serde_json::Value> {
                let points: Vec<serde_json::Value> = file
                    .raw_archive(i)?
                    .into_iter()
                    .map(|(t, v)| serde_json::json!([t, json_float(v)]))
                    .collect();
                Ok(serde_json::json!({
                    "offset": x.offset,
                    "secondsPerPoint": x.step,
                    "points": x.points,
                    "retention": x.retention(),
                    "size": x.size(),
                    "data": points,
                }))
            })
            .collect::<Result<_>>()?;
        let doc = serde_json::json!({
            "aggregationMethod": h.aggregation.name(),
            "maxRetention": h.max_retention,
            "xFilesFactor": f64::from(h.x_files_factor),
            "archives": archives,
        });
        writeln!(out, "{}", serde_json::to_string(&doc)?)?;
        return Ok(());
    }
    if !a.raw {
        writeln!(out, "Meta data:")?;
        writeln!(out, "  aggregation method: {}", h.aggregation)?;
        writeln!(out, "  max retention: {}", h.max_retention)?;
        writeln!(
            out,
            "  xFilesFactor: {}",
            charcoal_web::python_percent_g(f64::from(h.x_files_factor), 6)
        )?;
        writeln!(out)?;
        for (i, x) in h.archives.iter().enumerate() {
            writeln!(out, "Archive {i} info:")?;
            writeln!(out, "  offset: {}", x.offset)?;
            writeln!(out, "  seconds per point: {}", x.step)?;
            writeln!(out, "  points: {}", x.points)?;
            writeln!(out, "  retention: {}", x.retention())?;
            writeln!(out, "  size: {}", x.size())?;
            writeln!(out)?;
        }
    }
    for i in 0..h.archives.len() {
        if !a.raw {
            writeln!(out, "Archive {i} data:")?;
        }
        for (slot, (t, v)) in file.raw_archive(i)?.into_iter().enumerate() {
            if a.raw {
                writeln!(out, "{t}:{}", charcoal_web::python_percent_g(v, 35))?;
            } else {
                writeln!(
                    out,
                    "{slot}: {t}, {:>10}",
                    charcoal_web::python_percent_g(v, 35)
                )?;
            }
        }
    }
    Ok(())
}

/// JSON has no NaN or infinities: those become strings, as graphite's tools print them.
fn json_float(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::json!(charcoal_web::python_repr(v))
    }
}

/// Stops directory walks between files on SIGINT/SIGTERM, so no file is left half-done.
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// Every `.wsp` file under `dir`, sorted, as paths relative to it.
fn whisper_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let entries = std::fs::read_dir(dir.join(&rel))
            .with_context(|| dir.join(&rel).display().to_string())?;
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = rel.join(entry.file_name());
            if kind.is_dir() {
                pending.push(name);
            } else if kind.is_file() && name.extension().is_some_and(|e| e == "wsp") {
                found.push(name);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn progress(len: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `job` on each file, with a progress bar, stopping between files when interrupted.
/// Failures are reported per file and counted; the walk goes on.
fn for_each_file(
    files: &[PathBuf],
    out: &mut impl Write,
    mut job: impl FnMut(&Path) -> Result<()>,
) -> Result<()> {
    let interrupted = interrupt_flag()?;
    let bar = progress(files.len());
    let mut failed = 0;
    for rel in files {
        if interrupted.load(Ordering::Relaxed) {
            bar.abandon_with_message("interrupted");
            bail!(
                "interrupted after {} of {} files",
                bar.position(),
                files.len()
            );
        }
        if let Err(e) = job(rel) {
            failed += 1;
            bar.suspend(|| eprintln!("{}: {e:#}", rel.display()));
        }
        bar.inc(1);
    }
    bar.finish();
    writeln!(out, "{} files, {failed} failed", files.len())?;
    if failed > 0 {
        bail!("{failed} of {} files failed", files.len());
    }
    Ok(())
}

fn resize(a: ResizeArgs, out: &mut impl Write) -> Result<()> {
    let now = a.now.unwrap_or_else(unix_now);
    let retentions = parse_retention_args(&a.retentions)?;
    let options = ResizeOptions {
        x_files_factor: a.x_files_factor,
        aggregation: a
            .aggregation_method
            .as_deref()
            .map(str::parse)
            .transpose()?,
        aggregate: a.aggregate,
        sparse: a.sparse,
    };
    let resize_one = |path: &Path| -> Result<()> {
        let backup = charcoal_store::resize(path, &retentions, options, now)?;
        if a.nobackup {
            std::fs::remove_file(&backup)?;
        }
        Ok(())
    };
    if a.path.is_dir() {
        let files = whisper_files(&a.path)?;
        return for_each_file(&files, out, |rel| resize_one(&a.path.join(rel)));
    }
    resize_one(&a.path)?;
    writeln!(out, "Resized: {}", a.path.display())?;
    Ok(())
}

/// Pairs SRC and DST: two files, or the .wsp files present under both directories.
fn pairs(src: &Path, dst: &Path) -> Result<Option<Vec<PathBuf>>> {
    if !src.is_dir() {
        return Ok(None);
    }
    if !dst.is_dir() {
        bail!(
            "{} is a directory but {} is not",
            src.display(),
            dst.display()
        );
    }
    let files = whisper_files(src)?;
    let (both, only_src): (Vec<_>, Vec<_>) =
        files.into_iter().partition(|rel| dst.join(rel).is_file());
    if !only_src.is_empty() {
        eprintln!(
            "{} file(s) under {} have no counterpart under {} and were skipped",
            only_src.len(),
            src.display(),
            dst.display()
        );
    }
    Ok(Some(both))
}

fn fill(a: PairArgs, out: &mut impl Write) -> Result<()> {
    let now = a.now.unwrap_or_else(unix_now);
    let fill_one = |src: &Path, dst: &Path| -> Result<()> {
        let src = Whisper::open_read_only(src)?;
        let mut dst = Whisper::open(dst)?;
        charcoal_store::fill(&src, &mut dst, now)?;
        Ok(())
    };
    match pairs(&a.src, &a.dst)? {
        Some(files) => for_each_file(&files, out, |rel| {
            fill_one(&a.src.join(rel), &a.dst.join(rel))
        }),
        None => fill_one(&a.src, &a.dst),
    }
}

fn merge(a: MergeArgs, out: &mut impl Write) -> Result<()> {
    let now = a.now.unwrap_or_else(unix_now);
    let from = a.from.as_deref().map(|t| parse_time(t, now)).transpose()?;
    let until = a.until.as_deref().map(|t| parse_time(t, now)).transpose()?;
    let merge_one = |src: &Path, dst: &Path| -> Result<()> {
        let src = Whisper::open_read_only(src)?;
        let mut dst = Whisper::open(dst)?;
        charcoal_store::merge(&src, &mut dst, from, until, now)?;
        Ok(())
    };
    match pairs(&a.src, &a.dst)? {
        Some(files) => for_each_file(&files, out, |rel| {
            merge_one(&a.src.join(rel), &a.dst.join(rel))
        }),
        None => merge_one(&a.src, &a.dst),
    }
}

fn set_aggregation(a: SetAggregationArgs, out: &mut impl Write) -> Result<()> {
    let method: AggregationMethod = a.method.parse()?;
    let mut file = Whisper::open(&a.path)?;
    let old = file.set_aggregation(method, a.x_files_factor)?;
    writeln!(
        out,
        "Updated aggregation method: {} ({old} -> {method})",
        a.path.display()
    )?;
    Ok(())
}

/// Whether an error is the user's (exit 2) rather than a runtime failure (exit 1).
pub fn is_usage_error(e: &anyhow::Error) -> bool {
    if e.downcast_ref::<charcoal_store::RetentionError>().is_some() {
        return true;
    }
    e.downcast_ref::<WhisperError>().is_some_and(|w| {
        matches!(
            w,
            WhisperError::Retention(_)
                | WhisperError::AggregationMethod(_)
                | WhisperError::XFilesFactor(_)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_700_000_000;
        assert_eq!(parse_time("123", now).unwrap(), 123);
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("-1h", now).unwrap(), now - 3600);
        assert_eq!(parse_time("now-30min", now).unwrap(), now - 1800);
        assert_eq!(parse_time("now+5min", now).unwrap(), now + 300);
        // Absolute Graphite forms (UTC).
        assert_eq!(parse_time("20231114", now).unwrap(), 1_699_920_000);
        assert_eq!(
            parse_time("22:13_20231114", now).unwrap(),
            1_700_000_000 - 20
        );
        assert_eq!(parse_time("midnight", now).unwrap(), 1_699_920_000);
        assert!(parse_time("-1x", now).is_err());
    }

    #[test]
    fn points() {
        assert_eq!(parse_point("100:2.5", 7).unwrap(), (100, 2.5));
        assert_eq!(parse_point("N:1", 7).unwrap(), (7, 1.0));
        assert_eq!(parse_point("100.9:1", 7).unwrap(), (100, 1.0));
        assert!(parse_point("100", 7).is_err());
        assert!(parse_point("x:1", 7).is_err());
    }
}
