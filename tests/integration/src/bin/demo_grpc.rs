//! The demo's gRPC service and a gRPC client for its tour, from the same crate as the e2e
//! tests' (`src/grpc`): no external binaries (grpcurl) needed.
//!
//! ```text
//! demo-grpc serve [--port 10090]
//! demo-grpc call METHOD [--addr 127.0.0.1:10000] [--id N] [--count N] [-H 'name: value']...
//! ```
//!
//! `call` runs one call of `pets.v1.Pets` (`GetPet`, `DeletePet`, `ListPets`, `AddPets`) and
//! prints a first line `gRPC <code> <name>` (the tour checks the code as an HTTP step checks its
//! status), then the answer, or the refusal: `grpc-message`, the `ErrorInfo` and `RetryInfo`
//! decoded from `grpc-status-details-bin`, and the metadata that came with it.

use std::process::ExitCode;

use apim_integration::grpc::client::Client;
use apim_integration::grpc::messages::Refusal;

const USAGE: &str = "usage: demo-grpc serve [--port PORT]\n       demo-grpc call METHOD [--addr HOST:PORT] [--id N] [--count N] [-H 'name: value']...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((cmd, rest)) if cmd == "serve" => serve(rest),
        Some((cmd, rest)) if cmd == "call" => call(rest),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: &[String]) -> ExitCode {
    let port = match args {
        [] => "10090".to_string(),
        [flag, port] if flag == "--port" => port.clone(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    eprintln!("demo-grpc: pets.v1.Pets on 127.0.0.1:{port}");
    match apim_integration::grpc::server::serve_forever(&format!("127.0.0.1:{port}")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-grpc: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Call {
    method: String,
    addr: String,
    id: u64,
    count: u32,
    metadata: Vec<(String, String)>,
}

fn parse_call(args: &[String]) -> Result<Call, String> {
    let (method, mut rest) = args.split_first().ok_or("no METHOD")?;
    let mut call = Call {
        method: method.clone(),
        addr: "127.0.0.1:10000".to_string(),
        id: 1,
        count: 3,
        metadata: Vec::new(),
    };
    while let Some((flag, tail)) = rest.split_first() {
        let (value, tail) = tail
            .split_first()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => call.addr = value.trim_start_matches("http://").to_string(),
            "--id" => call.id = value.parse().map_err(|e| format!("--id: {e}"))?,
            "--count" => call.count = value.parse().map_err(|e| format!("--count: {e}"))?,
            "-H" => {
                let (k, v) = value
                    .split_once(':')
                    .ok_or_else(|| format!("-H {value}: not 'name: value'"))?;
                call.metadata
                    .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            other => return Err(format!("unknown option {other}")),
        }
        rest = tail;
    }
    Ok(call)
}

fn call(args: &[String]) -> ExitCode {
    let call = match parse_call(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo-grpc: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let port = call
        .addr
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let Some(port) = port.filter(|_| call.addr.starts_with("127.0.0.1:")) else {
        eprintln!("demo-grpc: --addr must be 127.0.0.1:PORT");
        return ExitCode::from(2);
    };
    let mut client = match Client::connect(port) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("demo-grpc: {e}");
            return ExitCode::FAILURE;
        }
    };
    let md: Vec<(&str, &str)> = call
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer: Result<Vec<String>, tonic::Status> = match call.method.as_str() {
        "GetPet" | "DeletePet" => client
            .unary(&call.method, call.id, &md)
            .map(|p| vec![format!("{p:?}")]),
        "ListPets" => client
            .list_pets(call.count, &md)
            .map(|pets| pets.iter().map(|p| format!("{p:?}")).collect()),
        "AddPets" => client
            .add_pets(call.count, &md)
            .map(|r| vec![format!("{r:?}")]),
        other => {
            eprintln!("demo-grpc: no method {other} (GetPet, DeletePet, ListPets, AddPets)");
            return ExitCode::from(2);
        }
    };
    match answer {
        Ok(lines) => {
            println!("gRPC 0 OK");
            for l in lines {
                println!("{l}");
            }
        }
        Err(status) => {
            println!("gRPC {} {:?}", status.code() as i32, status.code());
            println!("grpc-message: {}", status.message());
            match Refusal::decode(status.details()) {
                Ok(r) => {
                    if let Some((reason, domain, metadata)) = &r.info {
                        println!(
                            "error-info: reason={reason} domain={domain} metadata={metadata:?}"
                        );
                    }
                    if let Some(s) = r.retry_delay {
                        println!("retry-info: retry in {s} s");
                    }
                }
                Err(e) => println!("details: {e}"),
            }
            for (k, v) in status.metadata().clone().into_headers().iter() {
                println!("{k}: {}", String::from_utf8_lossy(v.as_bytes()));
            }
        }
    }
    ExitCode::SUCCESS
}
