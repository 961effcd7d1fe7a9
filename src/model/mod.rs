//! The leaf model the stages share: the entry and file context, structured metadata, the closed
//! label enums and routes. It imports no stage; every stage may import it.

pub mod entry;
pub mod labels;
pub mod metadata;
pub mod route;

pub use entry::{FileCtx, StreamKind};
pub use metadata::{Metadata, MAX_METADATA_VALUE};
pub use route::{Hint, Route, RouteMatch};
