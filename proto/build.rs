//! Compiles every `.proto` file under `meridian/` with protox (pure Rust, no system `protoc`)
//! and generates the Rust types with prost-build from the resulting descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "meridian/common/v1/common.proto",
        "meridian/control/v1/ci.proto",
        "meridian/control/v1/change.proto",
        "meridian/resolution/v1/incident.proto",
        "meridian/service_level/v1/catalogue.proto",
        "meridian/service_level/v1/sla.proto",
        "meridian/relationship/v1/satisfaction.proto",
        "meridian/governance/v1/governance.proto",
        "meridian/workflow/v1/workflow.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    // The descriptors themselves, for decoding a message by its type name at run time.
    #[expect(
        clippy::disallowed_methods,
        reason = "cargo hands a build script its output folder this way"
    )]
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptors.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
