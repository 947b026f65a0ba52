//! Compiles every `.proto` file under `meridian/` with protox (pure Rust, no system `protoc`)
//! and generates the Rust types with prost-build from the resulting descriptor set.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "meridian/common/v1/common.proto",
        "meridian/resolution/v1/incident.proto",
        "meridian/service_level/v1/catalogue.proto",
        "meridian/workflow/v1/workflow.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["."])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
