//! (scaffold, replaced by the parser work)

use super::Record;

/// Parses a `[GIN]` access line.
pub fn parse_access(line: &[u8], rec: &mut Record) -> bool {
    let _ = (line, rec);
    false
}

/// Parses a `[GIN-debug]` line.
pub fn parse_debug(line: &[u8], rec: &mut Record) -> bool {
    let _ = (line, rec);
    false
}

/// Parses an `Error #NN:` / `     Meta:` continuation line.
pub fn parse_error_line(line: &[u8], rec: &mut Record) -> bool {
    let _ = (line, rec);
    false
}
