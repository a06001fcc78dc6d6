//! `rls-server --port <p> --redis redis://127.0.0.1:<port>`: see the library docs.

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let port: u16 = arg("--port")
        .unwrap_or_else(|| "8081".into())
        .parse()
        .map_err(|e| format!("--port: {e}"))?;
    let redis = arg("--redis").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("binding port {port}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("listening on {bound}");
    rls_server::serve(listener, &redis).await
}
