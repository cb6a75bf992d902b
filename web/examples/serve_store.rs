//! Serves the render API over a data directory of whisper files through charcoal-store, for
//! side-by-side latency runs against graphite-web (benches/render-vs-graphite-web.sh).
//!
//! usage: serve_store DATA_DIR [ADDR]   (ADDR defaults to 127.0.0.1:8080; port 0 is fine)
//! Prints the bound address, serves until SIGINT (Ctrl-C), then closes the store.

use std::sync::Arc;

use charcoal_store::{StorageRules, Store, StoreConfig};
use charcoal_web::{AppState, Config, serve};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: serve_store DATA_DIR [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let store = Store::open(
        &StoreConfig {
            data_dir: dir.into(),
            ..StoreConfig::default()
        },
        StorageRules::default(),
    )?;
    let state = AppState::new(Arc::new(store.clone()), Config::default())?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let token = CancellationToken::new();
    let server = serve(listener, state, token.clone())?;
    println!("{}", server.local_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await?;
    store.close();
    Ok(())
}
