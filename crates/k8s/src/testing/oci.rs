//! One-layer OCI image archives built without a container engine, for the test node's
//! containerd (`ctr images import`): the slogate image the Dockerfile describes, the hello
//! service's and the pause image.
//!
//! [`SLOGATE_IMAGE`] is the one list of what goes into the slogate image; a test checks that
//! the Dockerfile ships the same binary at the same path, as the same user, with the same
//! entrypoint.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{HarnessError, io};

/// What an image holds: one static binary, the user it runs as and its entrypoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSpec {
    /// The binary's path in the source tree's build output, relative to the workspace root.
    pub binary: &'static str,
    /// Where the binary lives in the image.
    pub path: &'static str,
    /// `UID:GID` the container runs as.
    pub user: &'static str,
    /// The image's entrypoint.
    pub entrypoint: &'static [&'static str],
    /// Whether the image carries the machine's CA bundle at [`CA_BUNDLE`], as the
    /// Dockerfile's distroless base does (slogate trusts the system's roots, so GitHub
    /// Enterprise behind a private CA works with a mounted bundle).
    pub ca_bundle: bool,
}

/// Where Debian, and so distroless, keeps the CA bundle; the image has it at the same path.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The slogate image: the static musl binary (`make static`) on an otherwise empty base, as
/// the Dockerfile's final stage ships it on distroless `static:nonroot`.
pub const SLOGATE_IMAGE: ImageSpec = ImageSpec {
    binary: "target/x86_64-unknown-linux-musl/release/slogate",
    path: "/usr/local/bin/slogate",
    user: "65532:65532",
    entrypoint: &["/usr/local/bin/slogate"],
    ca_bundle: true,
};

/// The sample hello service (`crates/hello`, built static), listening on 8080.
pub const HELLO_IMAGE: ImageSpec = ImageSpec {
    binary: "target/x86_64-unknown-linux-musl/release/hello",
    path: "/usr/local/bin/hello",
    user: "65532:65532",
    entrypoint: &["/usr/local/bin/hello"],
    ca_bundle: false,
};

/// The pause program (`crates/hello/src/bin/pause.rs`, built static): every pod's sandbox.
pub const PAUSE_IMAGE: ImageSpec = ImageSpec {
    binary: "target/x86_64-unknown-linux-musl/release/pause",
    path: "/pause",
    user: "65535:65535",
    entrypoint: &["/pause"],
    ca_bundle: false,
};

/// The workspace root of this source tree.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// An image archive written to disk.
#[derive(Debug, Clone)]
pub struct ImageArchive {
    /// The archive file (an OCI image layout in a tar).
    pub file: PathBuf,
    /// The name containerd gives the image on import, e.g. `slogate.local/slogate:dev`.
    pub name: String,
    /// Bytes of the image's one layer (uncompressed: what the node stores).
    pub layer_bytes: u64,
}

/// Writes `dir/<file name>.oci.tar`: an OCI image named `name` whose one layer holds the
/// binary at `binary` (an absolute or workspace-relative path) as `spec.path`, `/etc/passwd`
/// and `/etc/group` naming the user, and an empty `/tmp`.
pub fn write_image(
    spec: &ImageSpec,
    binary: &Path,
    name: &str,
    dir: &Path,
) -> Result<ImageArchive, HarnessError> {
    let program = std::fs::read(binary).map_err(io(format!(
        "cannot read {} (build it with `make static`)",
        binary.display()
    )))?;
    let (uid, gid) = spec.user.split_once(':').unwrap_or((spec.user, spec.user));
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{uid}:{gid}:nonroot:/home/nonroot:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnonroot:x:{gid}:\n");

    let mut layer = Tar::new();
    let mut parent = String::new();
    let path = spec.path.trim_start_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        parent.push_str(part);
        parent.push('/');
        layer.dir(&parent, 0o755)?;
    }
    layer.file(path, 0o755, &program)?;
    layer.dir("etc/", 0o755)?;
    layer.file("etc/passwd", 0o644, passwd.as_bytes())?;
    layer.file("etc/group", 0o644, group.as_bytes())?;
    if spec.ca_bundle {
        let bundle = std::fs::read(CA_BUNDLE).map_err(io(format!(
            "cannot read {CA_BUNDLE} (Debian's ca-certificates package)"
        )))?;
        layer.dir("etc/ssl/", 0o755)?;
        layer.dir("etc/ssl/certs/", 0o755)?;
        layer.file(CA_BUNDLE.trim_start_matches('/'), 0o644, &bundle)?;
    }
    layer.dir("tmp/", 0o1777)?;
    let layer = layer.finish()?;
    let layer_digest = sha256(&layer);

    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": spec.user,
            "Entrypoint": spec.entrypoint,
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .expect("JSON serializes");
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .expect("JSON serializes");
    let manifest_digest = sha256(&manifest);
    let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }))
    .expect("JSON serializes");

    let mut archive = Tar::new();
    archive.file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    archive.file("index.json", 0o644, &index)?;
    archive.dir("blobs/", 0o755)?;
    archive.dir("blobs/sha256/", 0o755)?;
    for (digest, blob) in [
        (&layer_digest, &layer),
        (&config_digest, &config),
        (&manifest_digest, &manifest),
    ] {
        let hex = digest.trim_start_matches("sha256:");
        archive.file(&format!("blobs/sha256/{hex}"), 0o644, blob)?;
    }
    let file_name = name.replace(['/', ':'], "_");
    let file = dir.join(format!("{file_name}.oci.tar"));
    std::fs::write(&file, archive.finish()?)
        .map_err(io(format!("cannot write {}", file.display())))?;
    Ok(ImageArchive {
        file,
        name: name.to_owned(),
        layer_bytes: layer.len() as u64,
    })
}

fn sha256(data: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A reproducible tar stream in memory: entries owned by root, mtime 0.
struct Tar {
    builder: tar::Builder<Vec<u8>>,
}

impl Tar {
    fn new() -> Self {
        Self {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn dir(&mut self, name: &str, mode: u32) -> Result<(), HarnessError> {
        self.entry(name, mode, tar::EntryType::Directory, &[])
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), HarnessError> {
        self.entry(name, mode, tar::EntryType::Regular, data)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        kind: tar::EntryType,
        data: &[u8],
    ) -> Result<(), HarnessError> {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        self.builder
            .append_data(&mut header, name, data)
            .map_err(io(format!("cannot add {name} to an image archive")))
    }

    fn finish(self) -> Result<Vec<u8>, HarnessError> {
        self.builder
            .into_inner()
            .map_err(io("cannot finish an image archive"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_list(file: &Path) -> String {
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn archive_is_an_oci_layout_whose_layer_holds_the_executable_binary() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("prog");
        std::fs::write(&binary, b"#!/bin/true\n").unwrap();
        let image =
            write_image(&SLOGATE_IMAGE, &binary, "slogate.local/x:dev", dir.path()).unwrap();
        let listing = tar_list(&image.file);
        assert!(
            listing.contains("oci-layout") && listing.contains("index.json"),
            "{listing}"
        );
        assert_eq!(listing.matches("blobs/sha256/").count(), 4, "{listing}");

        let out = dir.path().join("unpacked");
        std::fs::create_dir(&out).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&image.file)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        let read_json = |path: PathBuf| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        };
        let blob = |digest: &serde_json::Value| {
            out.join("blobs/sha256")
                .join(digest.as_str().unwrap().trim_start_matches("sha256:"))
        };
        let index = read_json(out.join("index.json"));
        let entry = &index["manifests"][0];
        assert_eq!(
            entry["annotations"]["io.containerd.image.name"],
            "slogate.local/x:dev"
        );
        let manifest = read_json(blob(&entry["digest"]));
        let config = read_json(blob(&manifest["config"]["digest"]));
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Entrypoint"][0], "/usr/local/bin/slogate");
        let layer = tar_list(&blob(&manifest["layers"][0]["digest"]));
        assert!(
            layer
                .lines()
                .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with(" usr/local/bin/slogate")),
            "{layer}"
        );
        assert!(
            layer
                .lines()
                .any(|l| l.ends_with(" etc/ssl/certs/ca-certificates.crt")),
            "the slogate image carries the CA bundle, as its distroless base does:\n{layer}"
        );
        assert_eq!(
            image.layer_bytes,
            std::fs::metadata(blob(&manifest["layers"][0]["digest"]))
                .unwrap()
                .len()
        );
    }
}
