//! The demo's upstream: the same echo server the e2e tests use, on a fixed port, so the demo
//! shows what reached the service (headers added, credentials stripped).
//!
//! `demo-upstream [--port 10080]`

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match args.as_slice() {
        [] => "10080".to_string(),
        [flag, port] if flag == "--port" => port.clone(),
        _ => {
            eprintln!("usage: demo-upstream [--port PORT]");
            return ExitCode::from(2);
        }
    };
    eprintln!("demo-upstream: echoing on 127.0.0.1:{port}");
    match apim_integration::serve_forever(&format!("127.0.0.1:{port}")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-upstream: {e}");
            ExitCode::FAILURE
        }
    }
}
