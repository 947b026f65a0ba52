//! Meridian's bus contract: the protobuf messages every service publishes and consumes.
//!
//! The `.proto` files under `proto/meridian/` are the source of truth; `build.rs` compiles them
//! with protox (no system `protoc`) and prost. The CloudEvents attributes of a message live in its
//! AMQP properties and headers (see the chassis bus module), so the payloads stay plain.

/// Types shared by every event.
pub mod common {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.common.v1.rs"));
    }
}

/// Incident management events (resolution service).
pub mod resolution {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.resolution.v1.rs"));
    }
}

/// Service catalogue events (service-level service).
pub mod service_level {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.service_level.v1.rs"));
    }
}

/// Workflow engine events, service task commands and their replies (workflow service).
pub mod workflow {
    /// Version 1.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/meridian.workflow.v1.rs"));
    }
}

pub use prost::Message;
