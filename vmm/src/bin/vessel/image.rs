//! `vessel image APP -o DIR|FILE.tar`: a packed app as an OCI image.
//!
//! One layer holding the packed app at `/APP`, an image config whose
//! entrypoint runs it (with the `org.vessel.app` label that says it is a
//! Vessel app) and a manifest, written as an OCI image layout: a directory,
//! or, for an output ending in `.tar`, the same as one tar archive, which
//! `ctr image import` and `podman load` take. The index names the image
//! (`--tag`, default `localhost/vessel/APP:latest`) for both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, PlatformBuilder,
    RootFsBuilder, Sha256Digest,
};
use sha2::{Digest as _, Sha256};

/// The label (config) and annotation (manifest) naming the app.
pub const APP_LABEL: &str = "org.vessel.app";

/// `vessel image`'s arguments.
pub struct Request {
    /// The packed app.
    pub app: PathBuf,
    /// The layout directory, or a `.tar` file.
    pub output: PathBuf,
    /// The image's name; default `localhost/vessel/APP:latest`.
    pub tag: Option<String>,
}

/// A blob of the layout: its bytes and their descriptor.
struct Blob {
    bytes: Vec<u8>,
    desc: Descriptor,
}

type Res<T> = std::result::Result<T, String>;

/// Run `vessel image`; the exit code (125 with one line on an error).
pub fn image(req: Request) -> i32 {
    match build(&req) {
        Ok(name) => {
            eprintln!("vessel: image {name} written to {}", req.output.display());
            0
        }
        Err(e) => {
            eprintln!("vessel: error: image: {e}");
            vessel_abi::exit::LAUNCHER_ERROR
        }
    }
}

fn build(req: &Request) -> Res<String> {
    let bytes = std::fs::read(&req.app).map_err(|e| format!("read {}: {e}", req.app.display()))?;
    if vmm::pack::guest_in(&bytes).is_none() {
        return Err(format!(
            "{} is not a packed Vessel app (no {} section): pack it with `vessel pack` or `cargo xtask build`",
            req.app.display(),
            vmm::pack::GUEST_SECTION
        ));
    }
    let arch = match vmm::launcher_machine(&bytes).map_err(|e| e.to_string())? {
        vmm::elf::Machine::X86_64 => Arch::Amd64,
        vmm::elf::Machine::Aarch64 => Arch::ARM64,
    };
    let app = req
        .app
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{}: the app's file name must be UTF-8", req.app.display()))?
        .to_string();
    let name = req
        .tag
        .clone()
        .unwrap_or_else(|| format!("localhost/vessel/{app}:latest"));
    let layer = blob(MediaType::ImageLayer, layer_tar(&app, &bytes)?)?;
    let config = blob(
        MediaType::ImageConfig,
        config_json(&app, arch.clone(), &layer)?,
    )?;
    let labels = HashMap::from([(APP_LABEL.to_string(), app.clone())]);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.desc.clone())
        .layers(vec![layer.desc.clone()])
        .annotations(labels)
        .build()
        .map_err(|e| e.to_string())?;
    let manifest = blob(MediaType::ImageManifest, json(&manifest)?)?;
    let mut entry = manifest.desc.clone();
    entry.set_platform(Some(
        PlatformBuilder::default()
            .architecture(arch)
            .os(Os::Linux)
            .build()
            .map_err(|e| e.to_string())?,
    ));
    entry.set_annotations(Some(HashMap::from([
        ("io.containerd.image.name".to_string(), name.clone()),
        (
            "org.opencontainers.image.ref.name".to_string(),
            name.clone(),
        ),
    ])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()
        .map_err(|e| e.to_string())?;
    let layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(|e| e.to_string())?;
    let mut files = vec![
        ("oci-layout".to_string(), json(&layout)?),
        ("index.json".to_string(), json(&index)?),
    ];
    for b in [layer, config, manifest] {
        let hex = b.desc.digest().digest().to_string();
        files.push((format!("blobs/sha256/{hex}"), b.bytes));
    }
    write(&req.output, files)?;
    Ok(name)
}

fn json<T: serde::Serialize>(v: &T) -> Res<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| e.to_string())
}

fn blob(media_type: MediaType, bytes: Vec<u8>) -> Res<Blob> {
    let hex = format!("{:x}", Sha256::digest(&bytes));
    let digest: Sha256Digest = hex
        .parse()
        .map_err(|e: oci_spec::OciSpecError| e.to_string())?;
    let desc = DescriptorBuilder::default()
        .media_type(media_type)
        .size(bytes.len() as u64)
        .digest(digest)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Blob { bytes, desc })
}

/// The one layer: the packed app at `/APP`, mode 0755, owned by root,
/// time 0 (the same app gives the same digest).
fn layer_tar(app: &str, bytes: &[u8]) -> Res<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(bytes.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, app, bytes)
        .map_err(|e| e.to_string())?;
    tar.into_inner().map_err(|e| e.to_string())
}

fn config_json(app: &str, arch: Arch, layer: &Blob) -> Res<Vec<u8>> {
    let config = ConfigBuilder::default()
        .entrypoint(vec![format!("/{app}")])
        .env(vec!["PATH=/".to_string()])
        .labels(HashMap::from([(APP_LABEL.to_string(), app.to_string())]))
        .build()
        .map_err(|e| e.to_string())?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![layer.desc.digest().to_string()])
        .build()
        .map_err(|e| e.to_string())?;
    let image = ImageConfigurationBuilder::default()
        .architecture(arch)
        .os(Os::Linux)
        .config(config)
        .rootfs(rootfs)
        .build()
        .map_err(|e| e.to_string())?;
    json(&image)
}

/// The layout as a directory, or as a tar archive when `out` ends in `.tar`.
fn write(out: &Path, files: Vec<(String, Vec<u8>)>) -> Res<()> {
    let shown = |e: std::io::Error| format!("write {}: {e}", out.display());
    if out.extension().is_some_and(|e| e == "tar") {
        let mut tar = tar::Builder::new(Vec::new());
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            h.set_mtime(0);
            tar.append_data(&mut h, dir, std::io::empty())
                .map_err(shown)?;
        }
        for (path, bytes) in &files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            tar.append_data(&mut h, path, bytes.as_slice())
                .map_err(shown)?;
        }
        let bytes = tar.into_inner().map_err(shown)?;
        let tmp = out.with_extension("tar.tmp");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, out))
            .map_err(shown)
    } else {
        std::fs::create_dir_all(out.join("blobs/sha256")).map_err(shown)?;
        for (path, bytes) in files {
            std::fs::write(out.join(path), bytes).map_err(shown)?;
        }
        Ok(())
    }
}
