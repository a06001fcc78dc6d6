use super::*;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// `google.rpc.Status` and friends as `prost` reads them: an independent decoder for the
/// hand-written encoder.
mod rpc {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ErrorInfo {
        #[prost(string, tag = "1")]
        pub reason: String,
        #[prost(string, tag = "2")]
        pub domain: String,
        #[prost(btree_map = "string, string", tag = "3")]
        pub metadata: std::collections::BTreeMap<String, String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Duration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<Duration>,
    }
}

#[test]
fn content_types_exact_and_lenient() {
    let cases: &[(&str, Option<Flavor>, Option<Flavor>)] = &[
        ("application/grpc", Some(Flavor::Grpc), Some(Flavor::Grpc)),
        (
            "application/grpc+proto",
            Some(Flavor::Grpc),
            Some(Flavor::Grpc),
        ),
        (
            "application/grpc+json",
            Some(Flavor::Grpc),
            Some(Flavor::Grpc),
        ),
        ("application/grpc-web", Some(Flavor::Web), Some(Flavor::Web)),
        (
            "application/grpc-web+proto",
            Some(Flavor::Web),
            Some(Flavor::Web),
        ),
        (
            "application/grpc-web-text",
            Some(Flavor::WebText),
            Some(Flavor::WebText),
        ),
        (
            "application/grpc-web-text+proto",
            Some(Flavor::WebText),
            Some(Flavor::WebText),
        ),
        ("Application/GRPC", None, Some(Flavor::Grpc)),
        ("application/grpc; charset=utf-8", None, Some(Flavor::Grpc)),
        ("application/grpc+", None, Some(Flavor::Grpc)),
        ("application/grpcx", None, None),
        (
            "application/grpc,application/json",
            None,
            Some(Flavor::Grpc),
        ),
        ("application/json,application/grpc", None, None),
        ("application/json", None, None),
        ("", None, None),
    ];
    for (ct, exact, lenient) in cases {
        assert_eq!(flavor_exact(ct.as_bytes()), *exact, "{ct}");
        assert_eq!(reply_flavor(Some(ct.as_bytes())), *lenient, "{ct}");
    }
    assert_eq!(reply_flavor(None), None);
}

#[test]
fn method_paths_parse_only_when_exact() {
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        ("/pets.v1.Pets/GetPet", Some(("pets.v1.Pets", "GetPet"))),
        ("/Health/Check", Some(("Health", "Check"))),
        ("/pets.v1.Pets/GetPet?x=1", None),
        ("/pets.v1.Pets/GetPet/", None),
        ("/pets.v1.Pets/Get%50et", None),
        ("//pets.v1.Pets/GetPet", None),
        ("/pets.v1.Pets", None),
        ("/.pets.Pets/Get", None),
        ("/pets..Pets/Get", None),
        ("/pets.Pets/Get.Pet", None),
        ("pets.Pets/Get", None),
        ("/pets.Pets/", None),
    ];
    for (path, want) in cases {
        assert_eq!(parse_method_path(path), *want, "{path}");
    }
}

#[test]
fn clean_call_needs_one_grpc_content_type_post_and_an_exact_path() {
    let cases: &[(&[(&str, &str)], Option<(&str, &str)>)] = &[
        (
            &[
                (":method", "POST"),
                (":path", "/p.S/M"),
                ("content-type", "application/grpc"),
            ],
            Some(("p.S", "M")),
        ),
        (
            &[
                (":method", "POST"),
                (":path", "/p.S/M"),
                ("content-type", "application/grpc-web+proto"),
            ],
            Some(("p.S", "M")),
        ),
        (
            &[
                (":method", "POST"),
                (":path", "/p.S/M"),
                ("content-type", "application/json"),
            ],
            None,
        ),
        (&[(":method", "POST"), (":path", "/p.S/M")], None),
        (
            &[
                (":method", "POST"),
                (":path", "/p.S/M"),
                ("content-type", "application/grpc"),
                ("content-type", "application/json"),
            ],
            None,
        ),
        (
            &[
                (":method", "POST"),
                (":path", "/p.S/M"),
                ("content-type", "application/grpc,application/json"),
            ],
            None,
        ),
        (
            &[
                (":method", "GET"),
                (":path", "/p.S/M"),
                ("content-type", "application/grpc"),
            ],
            None,
        ),
        (
            &[
                (":method", "post"),
                (":path", "/p.S/M"),
                ("content-type", "application/grpc"),
            ],
            None,
        ),
        (
            &[
                (":method", "POST"),
                (":path", "/p.S/M?a"),
                ("content-type", "application/grpc"),
            ],
            None,
        ),
        (
            &[
                (":method", "POST"),
                (":path", "/p.S/%4D"),
                ("content-type", "application/grpc"),
            ],
            None,
        ),
    ];
    for (pairs, want) in cases {
        let head = RequestHead::from_pairs(pairs);
        assert_eq!(clean_call(&head), *want, "{pairs:?}");
    }
}

#[test]
fn http_statuses_map_to_grpc_codes() {
    for (http, grpc) in [
        (401, 16),
        (403, 7),
        (429, 8),
        (400, 3),
        (413, 3),
        (431, 3),
        (404, 12),
        (500, 13),
        (503, 14),
        (502, 14),
        (418, 2),
    ] {
        assert_eq!(status_for_http(http), grpc, "{http}");
    }
}

#[test]
fn messages_are_percent_encoded_and_bounded() {
    assert_eq!(percent_encode_message("No API key."), "No API key.");
    assert_eq!(percent_encode_message("100% sure"), "100%25 sure");
    assert_eq!(percent_encode_message("a\nb"), "a%0Ab");
    assert_eq!(percent_encode_message("café"), "caf%C3%A9");
    let long = "é".repeat(400);
    let enc = percent_encode_message(&long);
    assert_eq!(enc.len(), MAX_MESSAGE / 2 * 6);
}

#[test]
fn details_decode_with_prost() {
    use base64::Engine as _;
    use prost::Message as _;
    let cases = [
        (
            Details {
                code: 16,
                message: "No API key was presented.",
                reason: "missing_api_key",
                domain: "api-key-auth",
                metadata: vec![],
                retry_delay: None,
            },
            None,
        ),
        (
            Details {
                code: 8,
                message: "Over quota.",
                reason: "quota_exceeded",
                domain: "quota",
                metadata: vec![
                    ("limit".into(), "5".into()),
                    ("window".into(), "60s".into()),
                ],
                retry_delay: Some(42),
            },
            Some(42),
        ),
    ];
    for (details, retry) in cases {
        let header = details.header_value();
        assert!(!header.ends_with('='));
        // Padded or not, base64 of the same bytes: accept either as the spec does.
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&header)
            .unwrap();
        let status = rpc::Status::decode(bytes.as_slice()).unwrap();
        assert_eq!(status.code, details.code as i32);
        assert_eq!(status.message, details.message);
        let info = status.details.first().unwrap();
        assert_eq!(info.type_url, "type.googleapis.com/google.rpc.ErrorInfo");
        let info = rpc::ErrorInfo::decode(info.value.as_slice()).unwrap();
        assert_eq!(info.reason, details.reason);
        assert_eq!(info.domain, details.domain);
        let want: std::collections::BTreeMap<String, String> =
            details.metadata.iter().cloned().collect();
        assert_eq!(info.metadata, want);
        match retry {
            None => assert_eq!(status.details.len(), 1),
            Some(seconds) => {
                let any = status.details.get(1).unwrap();
                assert_eq!(any.type_url, "type.googleapis.com/google.rpc.RetryInfo");
                let r = rpc::RetryInfo::decode(any.value.as_slice()).unwrap();
                assert_eq!(r.retry_delay.unwrap().seconds, seconds);
            }
        }
    }
}

#[test]
fn varints_round_trip() {
    for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
        let mut out = Vec::new();
        proto::varint(&mut out, v);
        assert_eq!(
            prost::encoding::decode_varint(&mut out.as_slice()).unwrap(),
            v
        );
    }
}
