//! The test node's slogate image and the Dockerfile ship the same thing: one list
//! (`SLOGATE_IMAGE`) says which binary goes where, as which user, with which entrypoint, and
//! this test holds the Dockerfile's final stage to it.

use slogate_k8s::testing::oci::{SLOGATE_IMAGE, workspace_root};

#[test]
fn dockerfile_ships_the_binary_user_and_entrypoint_of_the_test_image() {
    let dockerfile = std::fs::read_to_string(workspace_root().join("Dockerfile")).unwrap();
    let final_stage = dockerfile
        .rsplit("\nFROM ")
        .next()
        .expect("the Dockerfile has stages");
    let copy = format!(
        "COPY --from=build /src/{} {}",
        SLOGATE_IMAGE.binary, SLOGATE_IMAGE.path
    );
    assert!(
        final_stage.lines().any(|l| l.trim() == copy),
        "the final stage has `{copy}`:\n{final_stage}"
    );
    let user = format!("USER {}", SLOGATE_IMAGE.user);
    assert!(
        final_stage.lines().any(|l| l.trim() == user),
        "the final stage has `{user}`:\n{final_stage}"
    );
    let entrypoint = format!(
        "ENTRYPOINT {}",
        serde_json::to_string(SLOGATE_IMAGE.entrypoint).unwrap()
    );
    assert!(
        final_stage.lines().any(|l| l.trim() == entrypoint),
        "the final stage has `{entrypoint}`:\n{final_stage}"
    );
    // The build stage builds the binary the final stage copies.
    assert!(
        dockerfile.contains("--target x86_64-unknown-linux-musl")
            && SLOGATE_IMAGE
                .binary
                .starts_with("target/x86_64-unknown-linux-musl/release/"),
        "the image's binary is the static musl build"
    );
}
