//! PNG/SVG graphs through the router: golden images (compared with a tolerance), decoded
//! sizes, formats, parameter errors, and the guard that text needs no system font.
//!
//! Goldens live in `tests/data/golden/<case>.png` and were made by this renderer, then
//! inspected by eye against graphite-web's reference images (`render-api.md` §19 data).
//! Regenerate after an intended change with:
//!
//! ```text
//! CHARCOAL_UPDATE_GOLDEN=1 cargo test -p charcoal-web --test it graph::golden
//! ```
//! and look at every changed file before committing it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use charcoal_web::{AppState, Config, MemorySource, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// 2026-11-27 00:00:00 UTC, a Friday.
const NOW: i64 = 1_795_737_600;

/// Deterministic noise in 0..1 (splitmix64 of the two inputs).
fn noise(a: u64, b: u64) -> f64 {
    let mut x = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x % 1_000_000) as f64 / 1_000_000.0
}

/// Metrics shaped like the reference images' fixture: CPU curves with a 6-hour period and
/// noise growing per host, a gappy noisy series, memory in bytes, a latency spanning decades,
/// and a year of hourly points.
fn source() -> Arc<MemorySource> {
    let src = Arc::new(MemorySource::new());
    let minutes = 3 * 24 * 60;
    for host in 1..=4u64 {
        let amp = 4.0 + 5.0 * host as f64;
        src.insert(
            &format!("test.web{host}.cpu.user"),
            60,
            (0..minutes).map(|k| {
                let t = NOW - k * 60;
                let phase = (t as f64) * std::f64::consts::TAU / 21_600.0;
                let v = 34.0 + amp * phase.sin() + 6.0 * (noise(host, k as u64) - 0.5);
                (t, v)
            }),
        );
    }
    src.insert(
        "test.web1.cpu.system",
        60,
        (0..minutes).map(|k| (NOW - k * 60, 8.0 + 8.0 * noise(9, k as u64))),
    );
    src.insert(
        "test.gappy.a",
        60,
        (0..minutes)
            .filter(|k| (k / 7) % 5 != 0)
            .map(|k| (NOW - k * 60, 3.0 + 44.0 * noise(11, k as u64))),
    );
    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
    for (name, base, swing) in [
        ("used", 5.5 * GIB, 1.5 * GIB),
        ("cached", 3.0 * GIB, 0.5 * GIB),
        ("free", 1.5 * GIB, 0.8 * GIB),
    ] {
        src.insert(
            &format!("servers.db1.memory.{name}"),
            60,
            (0..minutes).map(|k| {
                let t = NOW - k * 60;
                let phase = (t as f64) * std::f64::consts::TAU / 43_200.0;
                (
                    t,
                    base + swing * phase.cos() + 0.05 * GIB * noise(21, k as u64),
                )
            }),
        );
    }
    src.insert(
        "test.latency.p99",
        60,
        (0..minutes).map(|k| {
            let e = 0.3 + 3.5 * noise(31, (k / 10) as u64);
            (NOW - k * 60, 10f64.powf(e))
        }),
    );
    src.insert(
        "test.year.metric",
        3600,
        (0..366 * 24).map(|k| {
            let t = NOW - k * 3600;
            let season = (t as f64) * std::f64::consts::TAU / (365.0 * 86_400.0);
            (
                t,
                60.0 + 30.0 * season.sin() + 15.0 * (noise(41, k as u64) - 0.5),
            )
        }),
    );
    src
}

fn router() -> Router {
    app(AppState::with_clock(source(), Config::default(), || NOW).expect("valid config"))
}

/// Percent-encodes every value of a readable query (`a=f(x, 'y')&b=1`).
fn encode_query(uri: &str) -> String {
    let Some((path, query)) = uri.split_once('?') else {
        return uri.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => format!("{k}={}", crate::util::enc(v)),
            None => p.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

async fn get_bytes(app: &Router, uri: &str) -> (StatusCode, String, Vec<u8>) {
    let req = Request::get(encode_query(uri))
        .body(Body::empty())
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("router");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, ct, body.to_vec())
}

/// A decoded RGB(A) image.
struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

fn decode(png_bytes: &[u8]) -> Image {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    Image {
        width: info.width,
        height: info.height,
        rgb,
    }
}

/// (case, query): a few images that together exercise the options of spec §19.
const CASES: &[(&str, &str)] = &[
    (
        // Like ref-default-330x250-titled-3h.png.
        "default-330x250-titled-3h",
        "target=test.web1.cpu.user&target=test.web2.cpu.user&target=test.web3.cpu.user&target=test.web4.cpu.user&target=test.web1.cpu.system&target=test.gappy.a&from=-3h&title=Default look&vtitle=percent",
    ),
    (
        // Like ref-800x600-web-cpu-user-1d.png.
        "web-cpu-800x600-1d",
        "target=test.web*.cpu.user&target=test.gappy.a&from=-1d&width=800&height=600",
    ),
    // Like ref-nodata-330x250.png.
    ("nodata-330x250", "target=does.not.exist"),
    (
        "stacked-binary-dark",
        "target=servers.db1.memory.*&areaMode=stacked&yUnitSystem=binary&bgcolor=black&fgcolor=white&majorGridLineColor=555555&minorGridLineColor=333333&colorList=#00a0ff,orange,green&from=-12h&width=500&height=300&title=Memory&lineMode=staircase",
    ),
    (
        "styles-two-axes",
        "target=alias(color(test.web1.cpu.user,'red'),'user (red)')&target=lineWidth(test.web2.cpu.user,3)&target=dashed(test.web3.cpu.user)&target=secondYAxis(scale(test.web4.cpu.user,1000))&target=legendValue(test.gappy.a,'avg','max')&from=-6h&width=600&height=350&vtitle=left&vtitleRight=right",
    ),
    (
        "log-base-10",
        "target=test.latency.p99&logBase=10&from=-2h&width=400&height=250&title=p99 latency&vtitle=ms",
    ),
    (
        "graph-only-area-alpha",
        "target=test.web*.cpu.user&graphOnly=true&width=300&height=100&areaMode=all&areaAlpha=0.3&from=-6h",
    ),
    (
        "hide-axes-font-14-connected",
        "target=test.web1.cpu.user&target=test.gappy.a&hideAxes=true&fontSize=14&title=Big font&lineMode=connected&from=-2h&width=400&height=250&lineWidth=2",
    ),
    (
        "year-ymin-ymax",
        "target=test.year.metric&from=-1y&width=600&height=250&hideLegend=true&yMin=0&yMax=120",
    ),
    (
        "ten-minutes-nulls-as-zero",
        "target=test.gappy.a&from=-40min&width=400&height=200&hideGrid=true&yUnitSystem=none&drawNullAsZero=true&areaMode=first",
    ),
    // Pie charts (graphType=pie), checked by eye against graphite-web 1.1.10's PieGraph
    // drawing the same values: literal `name:value` targets where graphite-web was given the
    // same numbers, series reduced by pieMode otherwise.
    (
        "pie-default-330x250",
        "target=web1.requests:10&target=web2.requests:20&target=web3.requests:30&target=web4.requests:1&graphType=pie",
    ),
    (
        "pie-rotated-title-600x400",
        "target=alpha:42&target=beta:17.5&target=gamma:8&target=delta:3&target=epsilon:29&target=zeta:12&graphType=pie&pieLabels=rotated&title=Rotated labels&width=600&height=400",
    ),
    (
        "pie-dark-numbers-no-legend",
        "target=a:7.25&target=b:3&target=c:12&target=d:40&graphType=pie&valueLabels=number&bgcolor=black&fgcolor=white&valueLabelsColor=white&colorList=#00a0ff,orange,green,rose&hideLegend=true&width=300&height=300&title=Numbers",
    ),
    (
        "pie-series-maximum",
        "target=test.web*.cpu.user&target=test.web1.cpu.system&graphType=pie&pieMode=maximum&from=-6h&width=500&height=350",
    ),
    ("pie-nodata", "target=does.not.exist&graphType=pie"),
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

/// Per-channel mean absolute difference, and the share of pixels off by more than 64 in
/// some channel.
fn difference(a: &Image, b: &Image) -> (f64, f64) {
    let mut sum = 0u64;
    let mut far = 0usize;
    for (pa, pb) in a.rgb.chunks(3).zip(b.rgb.chunks(3)) {
        let d: Vec<u8> = pa.iter().zip(pb).map(|(x, y)| x.abs_diff(*y)).collect();
        sum += d.iter().map(|&x| u64::from(x)).sum::<u64>();
        if d.iter().any(|&x| x > 64) {
            far += 1;
        }
    }
    let pixels = (a.width * a.height) as f64;
    (sum as f64 / (pixels * 3.0), far as f64 / pixels)
}

#[tokio::test]
async fn golden_images() {
    let app = router();
    let update = std::env::var("CHARCOAL_UPDATE_GOLDEN").as_deref() == Ok("1");
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-artifacts/golden");
    let mut failures = Vec::new();
    for (case, query) in CASES {
        let (status, ct, body) = get_bytes(&app, &format!("/render?{query}")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{case}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(ct, "image/png", "{case}");
        let path = golden_dir().join(format!("{case}.png"));
        if update {
            std::fs::create_dir_all(golden_dir()).expect("golden dir");
            std::fs::write(&path, &body).expect("write golden");
            continue;
        }
        let golden = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; create it with CHARCOAL_UPDATE_GOLDEN=1",
                path.display()
            )
        });
        let (got, want) = (decode(&body), decode(&golden));
        if (got.width, got.height) != (want.width, want.height) {
            failures.push(format!(
                "{case}: size {}x{} != {}x{}",
                got.width, got.height, want.width, want.height
            ));
            continue;
        }
        let (mean, far) = difference(&got, &want);
        // Small anti-aliasing changes pass; moved text, lines or colours do not.
        if mean > 1.5 || far > 0.004 {
            let _ = std::fs::create_dir_all(&out_dir);
            let _ = std::fs::write(out_dir.join(format!("{case}.actual.png")), &body);
            failures.push(format!(
                "{case}: mean difference {mean:.3}, {:.2}% of pixels far off (actual image in test-artifacts/golden/)",
                far * 100.0
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn decoded_png_has_the_requested_size() {
    let app = router();
    for (w, h) in [
        (1, 1),
        (20, 15),
        (330, 250),
        (800, 600),
        (1920, 1080),
        (2000, 90),
    ] {
        for target in ["test.web*.cpu.user", "nothing.here"] {
            let (status, ct, body) = get_bytes(
                &app,
                &format!("/render?target={target}&from=-6h&width={w}&height={h}&format=png"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{w}x{h}");
            assert_eq!(ct, "image/png");
            let img = decode(&body);
            assert_eq!((img.width, img.height), (w, h), "{target}");
        }
    }
    // Default size, also when format is absent or unknown (graphite-web draws a PNG).
    for q in ["", "&format=png", "&format=bogus"] {
        let (status, ct, body) =
            get_bytes(&app, &format!("/render?target=test.web1.cpu.user{q}")).await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/png"), "{q}");
        let img = decode(&body);
        assert_eq!((img.width, img.height), (330, 250), "{q}");
    }
}

#[tokio::test]
async fn no_data_image_is_blank_with_red_text_in_the_middle() {
    // ref-nodata-330x250.png: white, with "No Data" in glyph.py's red (200, 0, 50) around
    // (165, 131), nothing else drawn.
    let (_, _, body) = get_bytes(&router(), "/render?target=none.such").await;
    let img = decode(&body);
    let mut inked = Vec::new();
    for y in 0..img.height {
        for x in 0..img.width {
            let i = ((y * img.width + x) * 3) as usize;
            let px = &img.rgb[i..i + 3];
            if px != [255, 255, 255] {
                inked.push((x, y, [px[0], px[1], px[2]]));
            }
        }
    }
    assert!(!inked.is_empty());
    let (xs, ys): (Vec<u32>, Vec<u32>) = inked.iter().map(|(x, y, _)| (*x, *y)).unzip();
    let (x0, x1) = (*xs.iter().min().unwrap(), *xs.iter().max().unwrap());
    let (y0, y1) = (*ys.iter().min().unwrap(), *ys.iter().max().unwrap());
    // The reference's text spans x 143..187, y 126..136.
    assert!(
        (140..=146).contains(&x0) && (184..=190).contains(&x1),
        "{x0}..{x1}"
    );
    assert!(
        (124..=128).contains(&y0) && (134..=138).contains(&y1),
        "{y0}..{y1}"
    );
    assert!(
        inked.iter().any(|(_, _, c)| *c == [200, 0, 50]),
        "solid glyph pixels are glyph.py's red"
    );
}

#[tokio::test]
async fn svg_output() {
    let app = router();
    let (status, ct, body) = get_bytes(
        &app,
        "/render?target=test.web1.cpu.user&from=-1h&format=svg&width=400&height=200&title=Hello",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ct, "image/svg+xml");
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
    assert!(text.contains(r#"width="400""#) && text.contains(r#"height="200""#));
    assert!(
        text.contains(">\nHello\n<") || text.contains(">Hello<"),
        "title as text"
    );
    assert!(text.contains("polyline"), "series as paths");
    let (_, ct, body) = get_bytes(
        &app,
        "/render?target=test.web1.cpu.user&from=-1h&format=svg&jsonp=cb",
    )
    .await;
    assert_eq!(ct, "text/javascript");
    let body = String::from_utf8(body).unwrap();
    assert!(body.starts_with("cb(\"<svg") && body.ends_with("\")"));
}

#[tokio::test]
async fn bad_image_parameters_are_400_with_the_name() {
    let app = router();
    for (q, needle) in [
        ("width=wide", "width"),
        ("height=0", "height"),
        ("bgcolor=mauve", "mauve"),
        ("areaMode=sometimes", "areaMode"),
        ("logBase=1", "logBase"),
        ("yMin=10&yMax=5", "minimum"),
        ("colorList=red,notacolor", "notacolor"),
    ] {
        let (status, _, body) =
            get_bytes(&app, &format!("/render?target=test.web1.cpu.user&{q}")).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(body.contains(needle), "{q}: {body}");
    }
    // A log axis over non-positive data cannot be drawn (glyph.py raises too).
    let (status, _, body) = get_bytes(
        &app,
        "/render?target=scale(test.web1.cpu.user,-1)&logBase=10",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("Logarithmic"));
}

/// With `ttf` enabled, plotters looks fonts up through fontconfig (falling back to any system
/// sans face), which finds nothing with an empty configuration. In a process that sees such a
/// configuration the golden images must still match and plotters must still find the
/// registered font (shared notes, dependencies §2.6 pitfall 1).
#[test]
fn text_needs_no_system_fonts() {
    if std::env::var_os("CHARCOAL_FONT_GUARD_CHILD").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("fonts.conf");
    std::fs::write(
        &conf,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"fonts.dtd\">\n<fontconfig></fontconfig>\n",
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "graph::golden_images",
            "graph::plotters_uses_the_registered_font_not_fontconfig",
            "--exact",
            "--test-threads=1",
        ])
        .env("FONTCONFIG_FILE", &conf)
        .env("FONTCONFIG_PATH", dir.path())
        .env("CHARCOAL_FONT_GUARD_CHILD", "1")
        .env_remove("CHARCOAL_UPDATE_GOLDEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("2 passed"),
        "golden images without system fonts:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// plotters' `ttf` feature silently replaces its ab_glyph font table with fontconfig lookups
/// (shared notes, dependencies §2.6 pitfall 1). A family registered only through
/// `register_font` is then unknown, so this fails if any crate in the build turns `ttf` on.
#[test]
fn plotters_uses_the_registered_font_not_fontconfig() {
    use plotters::style::{FontDesc, FontFamily, FontStyle, register_font};
    static SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
    assert!(register_font("Charcoal Font Guard", FontStyle::Normal, SANS).is_ok());
    let desc = FontDesc::new(
        FontFamily::Name("Charcoal Font Guard"),
        20.0,
        FontStyle::Normal,
    );
    let (w, h) = desc.box_size("Charcoal").unwrap_or_else(|e| {
        panic!("plotters cannot use a registered font ({e:?}): is its `ttf` feature enabled?")
    });
    // DejaVu Sans at 20 px: "Charcoal" is about 85 px wide and 15 px tall (cap height + 'l').
    assert!((70..=100).contains(&w) && (12..=25).contains(&h), "{w}x{h}");
}

/// Counts the pixels of exactly `rgb`.
fn count(img: &Image, rgb: [u8; 3]) -> usize {
    img.rgb.chunks(3).filter(|px| *px == rgb).count()
}

#[tokio::test]
async fn pie_png_has_the_requested_size() {
    let app = router();
    for (w, h) in [(1, 1), (20, 15), (330, 250), (800, 600), (2000, 90)] {
        for targets in [
            "target=a:1&target=b:2",
            "target=test.web*.cpu.user",
            "target=nothing.here",
        ] {
            let (status, ct, body) = get_bytes(
                &app,
                &format!("/render?{targets}&graphType=pie&from=-6h&width={w}&height={h}"),
            )
            .await;
            assert_eq!(
                (status, ct.as_str()),
                (StatusCode::OK, "image/png"),
                "{targets} {w}x{h}"
            );
            let img = decode(&body);
            assert_eq!((img.width, img.height), (w, h), "{targets}");
        }
    }
}

#[tokio::test]
async fn pie_null_only_series_is_a_zero_slice_and_a_zero_total_an_empty_pie() {
    let app = router();
    const BLUE: [u8; 3] = [100, 100, 255];
    const GREEN: [u8; 3] = [0, 200, 0];
    // An all-null series counts as 0 (graphite-web: `func(series) or 0`): it keeps its
    // legend entry and colour, and the next slice is the whole pie.
    let nulls = "removeAboveValue(test.web1.cpu.user,-1000)";
    let (status, _, body) = get_bytes(
        &app,
        &format!("/render?target={nulls}&target=b:5&graphType=pie&from=-1h"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let img = decode(&body);
    assert!(count(&img, BLUE) < 200, "only the legend box is blue");
    assert!(count(&img, GREEN) > 20_000, "the pie is green");
    // Values adding up to zero: graphite-web divides by zero (500); Charcoal draws the
    // legend and no slices.
    let (status, _, body) = get_bytes(
        &app,
        &format!("/render?target={nulls}&target=z:0&graphType=pie&from=-1h"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let img = decode(&body);
    let blue = count(&img, BLUE);
    assert!(blue > 20 && blue < 200, "legend box only: {blue}");
    assert!(count(&img, GREEN) < 200, "legend box only");
}

#[tokio::test]
async fn pie_modes_reduce_series() {
    // One literal slice of 50 beside a series whose minimum, average and maximum differ:
    // the share of the literal's colour (green) follows pieMode.
    let app = router();
    let mut greens = Vec::new();
    for mode in ["minimum", "average", "maximum"] {
        let (status, _, body) = get_bytes(
            &app,
            &format!(
                "/render?target=test.web4.cpu.user&target=lit:50&graphType=pie&pieMode={mode}&from=-6h&hideLegend=true&valueLabels=none"
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{mode}");
        greens.push(count(&decode(&body), [0, 200, 0]));
    }
    assert!(
        greens[0] > greens[1] && greens[1] > greens[2],
        "min > avg > max share: {greens:?}"
    );
}

#[tokio::test]
async fn pie_svg_and_errors() {
    let app = router();
    let (status, ct, body) = get_bytes(
        &app,
        "/render?target=a:1&target=b:3&graphType=pie&format=svg&title=Share",
    )
    .await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/svg+xml"));
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("<polygon"), "slices as polygons");
    assert!(text.contains("%75.00") && text.contains("%25.00"), "labels");
    assert!(text.contains("Share"), "title");
    for (q, needle) in [
        ("target=a:1&graphType=pie&pieMode=median", "pieMode"),
        ("target=a:1&graphType=pie&pieMode=Average", "pieMode"),
        ("target=a:1&graphType=pie&valueLabels=some", "valueLabels"),
        ("target=a:x&graphType=pie", "Invalid target"),
        ("target=a:1&graphType=pie&format=json", "graphType"),
        ("target=a.b&graphType=bar", "Invalid graphType 'bar'"),
    ] {
        let (status, _, body) = get_bytes(&app, &format!("/render?{q}")).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(body.contains(needle), "{q}: {body}");
    }
    // Pie-only options are not read for line graphs.
    let (status, _, _) = get_bytes(
        &app,
        "/render?target=test.web1.cpu.user&valueLabels=some&graphType=line",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
