//! OCI images of the modules, in the Wasm "compat" layout, built without a Docker engine.
//!
//! One image per module: a single `tar+gzip` layer holding `plugin.wasm`, a standard image
//! config, and a manifest annotated `module.wasm.image/variant=compat` (the solo-io Wasm image
//! spec's compat variant, which istio-agent and Envoy Gateway pull). It is written as an OCI
//! image-layout folder (`oci-layout`, `index.json`, `blobs/sha256/…`) plus a tarball of that
//! folder, which `crane`, `oras` and `skopeo` (`oci-archive:`) can push.
//!
//! Everything is deterministic (fixed tar metadata, gzip without a timestamp, sorted JSON), so
//! the same module always gives the same image digest.

use flate2::{write::GzEncoder, Compression, GzBuilder};
use kit::digest::{sha256, to_hex};
use serde_json::{json, Value};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const VARIANT_KEY: &str = "module.wasm.image/variant";
/// Largest blob `verify` reads into memory: far above any module, and a bound on bad input.
const MAX_BLOB_BYTES: u64 = 64 * 1024 * 1024;

/// An image held in memory: its blobs by digest, and the index pointing at the manifest.
#[derive(Debug)]
pub struct Image {
    pub manifest_digest: String,
    pub module_sha256: String,
    blobs: Vec<(String, Vec<u8>)>,
    index: Vec<u8>,
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", to_hex(&sha256(bytes)))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": digest_of(bytes), "size": bytes.len()})
}

/// `plugin.wasm` in a tar with fixed metadata (mode 0644, root, mtime 0).
fn layer_tar(module: &[u8]) -> Result<Vec<u8>, String> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(module.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "plugin.wasm", module)
        .map_err(|e| format!("building the layer: {e}"))?;
    builder
        .into_inner()
        .map_err(|e| format!("building the layer: {e}"))
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder: GzEncoder<Vec<u8>> = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder
        .write_all(data)
        .map_err(|e| format!("compressing the layer: {e}"))?;
    encoder
        .finish()
        .map_err(|e| format!("compressing the layer: {e}"))
}

/// Builds the image of one module; `tag` names it in the index (`org.opencontainers.image.ref.name`).
pub fn build(module: &[u8], tag: &str) -> Result<Image, String> {
    if module.get(..4) != Some(b"\0asm".as_slice()) {
        return Err("not a WebAssembly module (no \\0asm magic)".into());
    }
    let tar = layer_tar(module)?;
    let layer = gzip(&tar)?;
    let config = serde_json::to_vec(&json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(&tar)]},
    }))
    .map_err(|e| e.to_string())?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(CONFIG_TYPE, &config),
        "layers": [descriptor(LAYER_TYPE, &layer)],
        "annotations": {VARIANT_KEY: "compat"},
    }))
    .map_err(|e| e.to_string())?;
    let mut manifest_desc = descriptor(MANIFEST_TYPE, &manifest);
    if let Some(obj) = manifest_desc.as_object_mut() {
        obj.insert(
            "annotations".into(),
            json!({"org.opencontainers.image.ref.name": tag}),
        );
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [manifest_desc],
    }))
    .map_err(|e| e.to_string())?;
    Ok(Image {
        manifest_digest: digest_of(&manifest),
        module_sha256: to_hex(&sha256(module)),
        blobs: vec![
            (digest_of(&config), config),
            (digest_of(&layer), layer),
            (digest_of(&manifest), manifest),
        ],
        index,
    })
}

impl Image {
    /// Writes the image-layout folder `dir` (replacing its contents) and `dir.tar`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, String> {
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| io(&dir.display().to_string(), e))?;
        }
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| io(&blobs.display().to_string(), e))?;
        let mut files: Vec<(String, &[u8])> = vec![
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.as_slice(),
            ),
            ("index.json".into(), &self.index),
        ];
        for (digest, bytes) in &self.blobs {
            let hex = digest.trim_start_matches("sha256:");
            files.push((format!("blobs/sha256/{hex}"), bytes));
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut archive = tar::Builder::new(Vec::new());
        for (name, bytes) in &files {
            std::fs::write(dir.join(name), bytes).map_err(|e| io(name, e))?;
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            archive
                .append_data(&mut header, name, *bytes)
                .map_err(|e| io(name, e))?;
        }
        let tarball = dir.with_extension("tar");
        let bytes = archive.into_inner().map_err(|e| io("tarball", e))?;
        std::fs::write(&tarball, bytes).map_err(|e| io(&tarball.display().to_string(), e))?;
        Ok(tarball)
    }
}

fn read_blob(dir: &Path, desc: &Value, what: &str) -> Result<Vec<u8>, String> {
    let digest = at(desc, "/digest")
        .as_str()
        .ok_or_else(|| format!("{what}: no digest"))?;
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{what}: digest {digest:?} is not sha256:<64 hex>"))?;
    let path = dir.join("blobs").join("sha256").join(hex);
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .and_then(|f| f.take(MAX_BLOB_BYTES).read_to_end(&mut bytes))
        .map_err(|e| format!("{what}: {}: {e}", path.display()))?;
    if digest_of(&bytes) != digest {
        return Err(format!("{what}: blob content does not match {digest}"));
    }
    if at(desc, "/size").as_u64() != Some(bytes.len() as u64) {
        return Err(format!(
            "{what}: size {} does not match {}",
            at(desc, "/size"),
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// A member by JSON Pointer, `null` when absent (so comparisons simply fail).
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

fn parse(bytes: &[u8], what: &str) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{what}: {e}"))
}

/// Checks an image-layout folder end to end: every digest and size, the media types, the compat
/// annotation, the config's diff_id, and that the layer holds exactly `plugin.wasm`.
/// Returns the module's sha256.
pub fn verify(dir: &Path) -> Result<String, String> {
    let layout = std::fs::read(dir.join("oci-layout")).map_err(|e| format!("oci-layout: {e}"))?;
    if at(&parse(&layout, "oci-layout")?, "/imageLayoutVersion") != "1.0.0" {
        return Err("oci-layout: imageLayoutVersion is not 1.0.0".into());
    }
    let index = parse(
        &std::fs::read(dir.join("index.json")).map_err(|e| format!("index.json: {e}"))?,
        "index.json",
    )?;
    let manifests = at(&index, "/manifests")
        .as_array()
        .ok_or("index.json: no manifests")?;
    let [manifest_desc] = manifests.as_slice() else {
        return Err(format!(
            "index.json: {} manifests, expected 1",
            manifests.len()
        ));
    };
    let manifest = parse(&read_blob(dir, manifest_desc, "manifest")?, "manifest")?;
    if at(&manifest, "/mediaType") != MANIFEST_TYPE || at(&manifest, "/schemaVersion") != 2 {
        return Err("manifest: not an OCI image manifest v2".into());
    }
    if at(&manifest, "/annotations/module.wasm.image~1variant") != "compat" {
        return Err(format!("manifest: annotation {VARIANT_KEY}=compat missing"));
    }
    let config = parse(
        &read_blob(dir, at(&manifest, "/config"), "config")?,
        "config",
    )?;
    let layers = at(&manifest, "/layers")
        .as_array()
        .ok_or("manifest: no layers")?;
    let [layer_desc] = layers.as_slice() else {
        return Err(format!(
            "manifest: {} layers, the compat variant has 1",
            layers.len()
        ));
    };
    if at(layer_desc, "/mediaType") != LAYER_TYPE {
        return Err(format!(
            "layer: media type {} is not {LAYER_TYPE}",
            at(layer_desc, "/mediaType")
        ));
    }
    let layer = read_blob(dir, layer_desc, "layer")?;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(layer.as_slice())
        .take(MAX_BLOB_BYTES)
        .read_to_end(&mut tar)
        .map_err(|e| format!("layer: not gzip: {e}"))?;
    if at(&config, "/rootfs/diff_ids/0").as_str() != Some(digest_of(&tar).as_str()) {
        return Err("config: rootfs.diff_ids[0] does not match the layer".into());
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut module = None;
    for entry in archive.entries().map_err(|e| format!("layer: {e}"))? {
        let mut entry = entry.map_err(|e| format!("layer: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("layer: {e}"))?
            .into_owned();
        if path != Path::new("plugin.wasm") || module.is_some() {
            return Err(format!("layer: unexpected entry {}", path.display()));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("layer: {e}"))?;
        module = Some(bytes);
    }
    let module = module.ok_or("layer: no plugin.wasm")?;
    if module.get(..4) != Some(b"\0asm".as_slice()) {
        return Err("layer: plugin.wasm is not a WebAssembly module".into());
    }
    Ok(to_hex(&sha256(&module)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend(std::iter::repeat_n(7u8, 1000));
        m
    }

    #[test]
    fn built_image_verifies_and_holds_the_module() {
        let dir = tempdir("verify");
        let image = build(&module(), "v1").unwrap();
        let tarball = image.write(&dir).unwrap();
        assert_eq!(verify(&dir).unwrap(), image.module_sha256);
        assert_eq!(image.module_sha256, to_hex(&sha256(&module())));
        assert!(tarball.exists());
        let index: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], image.manifest_digest);
        assert_eq!(
            index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
            "v1"
        );
    }

    #[test]
    fn the_same_module_gives_the_same_digest() {
        let a = build(&module(), "v1").unwrap();
        let b = build(&module(), "v1").unwrap();
        assert_eq!(a.manifest_digest, b.manifest_digest);
        let mut other = module();
        other.push(1);
        assert_ne!(
            build(&other, "v1").unwrap().manifest_digest,
            a.manifest_digest
        );
    }

    #[test]
    fn tampering_is_caught() {
        let dir = tempdir("tamper");
        let image = build(&module(), "v1").unwrap();
        image.write(&dir).unwrap();
        // Replace the layer blob's content: its digest no longer matches.
        let (layer_digest, _) = image
            .blobs
            .iter()
            .find(|(_, b)| b.starts_with(&[0x1f, 0x8b]))
            .unwrap();
        let path = dir
            .join("blobs/sha256")
            .join(layer_digest.trim_start_matches("sha256:"));
        std::fs::write(&path, b"junk").unwrap();
        assert!(
            verify(&dir).unwrap_err().contains("does not match"),
            "{:?}",
            verify(&dir)
        );
        std::fs::remove_file(dir.join("index.json")).unwrap();
        assert!(verify(&dir).is_err());
    }

    #[test]
    fn non_wasm_input_is_refused() {
        assert!(build(b"not wasm", "v1").unwrap_err().contains("magic"));
    }

    fn tempdir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("apim-oci-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
