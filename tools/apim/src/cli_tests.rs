use super::*;
use clap::error::ErrorKind;

fn parse(argv: &str) -> Result<Command, clap::Error> {
    Cli::try_parse_from(std::iter::once("apim").chain(argv.split_whitespace())).map(|c| c.command)
}

#[test]
fn commands_parse() {
    let ok: Vec<(&str, Command)> = vec![
        (
            "key new --consumer alice --plan gold --scopes pets:read --scopes pets:write --groups a,b",
            Command::Key(KeyCommand::New(KeyNewArgs {
                consumer: Some("alice".into()),
                plan: Some("gold".into()),
                scopes: vec!["pets:read".into(), "pets:write".into()],
                groups: vec!["a,b".into()],
            })),
        ),
        (
            "key new",
            Command::Key(KeyCommand::New(KeyNewArgs {
                consumer: None,
                plan: None,
                scopes: vec![],
                groups: vec![],
            })),
        ),
        ("key hash", Command::Key(KeyCommand::Hash { key: None })),
        (
            "key hash abc",
            Command::Key(KeyCommand::Hash {
                key: Some("abc".into()),
            }),
        ),
        (
            "validate envoy/gateway.yaml",
            Command::Validate(ValidateArgs {
                target: None,
                args: vec!["envoy/gateway.yaml".into()],
            }),
        ),
        (
            "validate --target gateway-api api_key_auth f.yaml",
            Command::Validate(ValidateArgs {
                target: Some(TargetArg::GatewayApi),
                args: vec!["api_key_auth".into(), "f.yaml".into()],
            }),
        ),
        (
            "validate quota - --target istio",
            Command::Validate(ValidateArgs {
                target: Some(TargetArg::Istio),
                args: vec!["quota".into(), "-".into()],
            }),
        ),
        (
            "token mint --ttl -3600 --scope pets:read",
            Command::Token(TokenCommand::Mint(MintArgs {
                scope: "pets:read".into(),
                sub: "demo-user".into(),
                aud: crate::token::DEMO_AUDIENCE.into(),
                iss: crate::token::DEMO_ISSUER.into(),
                ttl: -3600,
                kid: crate::token::DEMO_KID.into(),
                key: None,
            })),
        ),
        (
            "oci build m.wasm out",
            Command::Oci(OciCommand::Build {
                module: "m.wasm".into(),
                dir: "out".into(),
                tag: "latest".into(),
            }),
        ),
        (
            "manifests check .",
            Command::Manifests(ManifestsCommand::Check {
                root: Some(".".into()),
            }),
        ),
        (
            "completions bash",
            Command::Completions {
                shell: clap_complete::Shell::Bash,
            },
        ),
    ];
    for (argv, want) in ok {
        let got = parse(argv).unwrap_or_else(|e| panic!("{argv}: {e}"));
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{argv}");
    }
}

/// Usage errors exit 2 and name what is wrong; `--help` anywhere is not an error (exit 0).
#[test]
fn usage_errors_name_the_problem_and_help_is_everywhere() {
    let bad: Vec<(&str, ErrorKind, &str)> = vec![
        ("key new --plna gold", ErrorKind::UnknownArgument, "--plna"),
        (
            "key new --plan gold",
            ErrorKind::MissingRequiredArgument,
            "--consumer",
        ),
        (
            "key",
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand,
            "new",
        ),
        (
            "validate",
            ErrorKind::MissingRequiredArgument,
            "[FILTER] FILE",
        ),
        ("validate a b c", ErrorKind::TooManyValues, "'c'"),
        (
            "validate --target kong q f",
            ErrorKind::InvalidValue,
            "kong",
        ),
        (
            "token mint --bogus 1",
            ErrorKind::UnknownArgument,
            "--bogus",
        ),
        ("token mint --ttl x", ErrorKind::ValueValidation, "x"),
        ("frobnicate", ErrorKind::InvalidSubcommand, "frobnicate"),
        ("completions tcsh", ErrorKind::InvalidValue, "tcsh"),
    ];
    for (argv, kind, names) in bad {
        let e = parse(argv).unwrap_err();
        assert_eq!(e.kind(), kind, "{argv}: {e}");
        assert_eq!(e.exit_code(), 2, "{argv}");
        assert!(e.to_string().contains(names), "{argv}: {e}");
    }
    for argv in [
        "--help",
        "key --help",
        "key new --help",
        "key hash --help",
        "validate --help",
        "token --help",
        "token mint --help",
        "oci --help",
        "oci build --help",
        "oci verify --help",
        "manifests --help",
        "manifests sync --help",
        "manifests check --help",
        "completions --help",
        "help key",
    ] {
        let e = parse(argv).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{argv}");
        assert_eq!(e.exit_code(), 0, "{argv}");
    }
}

#[test]
fn the_declaration_is_consistent() {
    use clap::CommandFactory as _;
    Cli::command().debug_assert();
}

#[test]
fn repeated_options_split_into_words() {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        words(&v(&["pets:read pets:write", " admin "]), &[' ']),
        v(&["pets:read", "pets:write", "admin"])
    );
    assert_eq!(
        words(&v(&["a,b", "c d"]), &[',', ' ']),
        v(&["a", "b", "c", "d"])
    );
    assert!(words(&v(&[""]), &[' ']).is_empty());
}
