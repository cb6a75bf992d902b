//! `serve` on a real socket: answers, drains on cancellation, frees its port, restarts.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use charcoal_web::{Config, serve};

use crate::util::state_with;

#[tokio::test]
async fn serves_and_shuts_down_repeatedly() {
    for _ in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token = CancellationToken::new();
        let server = serve(listener, state_with(Config::default()), token.clone()).unwrap();
        let addr = server.local_addr();
        let client = reqwest::Client::new();
        let body = client
            .get(format!("http://{addr}/version"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "1.1.10\n");
        let r = client
            .post(format!("http://{addr}/render"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("target=sumSeries(test.*.cpu.user)&from=-1h&format=json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        server.shutdown().await.unwrap();
        // The port is released once shutdown returns.
        TcpListener::bind(addr)
            .await
            .expect("port free after shutdown");
    }
}

#[tokio::test]
async fn external_token_stops_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token = CancellationToken::new();
    let server = serve(listener, state_with(Config::default()), token.clone()).unwrap();
    token.cancel();
    server.join().await.unwrap();
}
