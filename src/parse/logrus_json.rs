//! Velero/logrus `JSONFormatter` lines (`--log-format=json`), and the hclog/go-plugin JSON shape.
//!
//! ```text
//! line = json_ws json_object json_ws
//! ```
//!
//! One object per line, keys sorted. `time` (or hclog `@timestamp`), `level` (`@level`) and
//! `msg` (`@message`) go to the [`Record`] members; every other member, in line order, goes to
//! `fields`: strings as [`ValueKind::JsonString`] (without quotes), numbers, booleans, null,
//! objects (`{"Namespace":"velero","Name":"x"}`) and arrays as [`ValueKind::JsonRaw`].
//! A hand-driven scanner over the bytes: nothing is allocated or copied.

use super::combinators::{json_object, json_ws, span_of, Error};
use super::{Field, Format, Level, Record, Value, ValueKind, MAX_FIELDS};

/// Parses one line into `rec`; false if the line is not one JSON object.
pub fn parse(line: &[u8], rec: &mut Record) -> bool {
    let Ok((start, _)) = json_ws::<Error>(line) else {
        return false;
    };
    let mut saw_level = false;
    let result = json_object(start, |key, raw, kind| {
        let value = Value {
            span: span_of(line, raw),
            kind,
        };
        match key {
            b"time" | b"@timestamp" if rec.time.is_none() => rec.time = Some(value.span),
            b"level" | b"@level" if !saw_level => {
                saw_level = true;
                if kind == ValueKind::JsonString {
                    rec.level = Level::from_word(raw);
                }
            }
            b"msg" | b"@message" if rec.msg.is_none() => rec.msg = Some(value),
            _ => {
                if rec.fields.len() < MAX_FIELDS {
                    rec.fields.push(Field {
                        key: span_of(line, key),
                        value,
                    });
                }
            }
        }
    });
    match result {
        Ok((rest, ())) if json_ws::<Error>(rest).is_ok_and(|(r, _)| r.is_empty()) => {
            rec.format = Format::LogrusJson;
            true
        }
        _ => false,
    }
}

/// Appends the members of the JSON object `obj` (a sub-slice of `line`) to `rec.fields`;
/// false if it is not an object. Used for the context object of zap console lines.
pub fn object_fields(line: &[u8], obj: &[u8], rec: &mut Record) -> bool {
    let mark = rec.fields.len();
    let ok = json_object(obj, |key, raw, kind| {
        if rec.fields.len() < MAX_FIELDS {
            rec.fields.push(Field {
                key: span_of(line, key),
                value: Value {
                    span: span_of(line, raw),
                    kind,
                },
            });
        }
    })
    .is_ok_and(|(rest, ())| json_ws::<Error>(rest).is_ok_and(|(r, _)| r.is_empty()));
    if !ok {
        rec.fields.truncate(mark);
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &[u8], rec: &Record) -> Vec<(String, String, ValueKind)> {
        rec.fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8_lossy(f.key.get(line)).into_owned(),
                    f.value.text(line).into_owned(),
                    f.value.kind,
                )
            })
            .collect()
    }

    fn ok(line: &str) -> Record {
        let mut rec = Record::new();
        assert!(parse(line.as_bytes(), &mut rec), "rejected: {line}");
        assert_eq!(rec.format, Format::LogrusJson);
        rec
    }

    #[test]
    fn real_line() {
        let line = r#"{"backuprequest":"velero/velero-default-20250101000358","controller":"backup","level":"debug","logSource":"pkg/controller/backup_controller.go:209","msg":"Getting backup","time":"2025-01-27T19:52:56Z"}"#;
        let rec = ok(line);
        let l = line.as_bytes();
        assert_eq!(rec.time.unwrap().get(l), b"2025-01-27T19:52:56Z");
        assert_eq!(rec.level, Some(Level::Debug));
        assert_eq!(rec.msg.unwrap().text(l), "Getting backup");
        let s = |k: &str, v: &str| (k.to_string(), v.to_string(), ValueKind::JsonString);
        assert_eq!(
            fields(l, &rec),
            vec![
                s("backuprequest", "velero/velero-default-20250101000358"),
                s("controller", "backup"),
                s("logSource", "pkg/controller/backup_controller.go:209"),
            ]
        );
    }

    #[test]
    fn errors_objects_numbers_and_escapes() {
        let line = r#"{"backup":{"Namespace":"velero","Name":"daily-1"},"controller":"backup-finalizer","error.file":"/go/src/github.com/vmware-tanzu/velero/pkg/x.go:12","error.function":"github.com/vmware-tanzu/velero/pkg/x.(*r).f","error.message":"rpc error: code = Unknown desc = \"bucket\" not found\n\tat x","id":87,"level":"error","list":[1,"a]"],"msg":"Excluding namespaces: \u003cnone\u003e","ok":true,"time":"2025-01-27T19:52:56Z","z":null}"#;
        let rec = ok(line);
        let l = line.as_bytes();
        assert_eq!(rec.level, Some(Level::Error));
        assert_eq!(rec.msg.unwrap().text(l), "Excluding namespaces: <none>");
        let got = fields(l, &rec);
        assert_eq!(
            got[0],
            ("backup".into(), "velero/daily-1".into(), ValueKind::JsonRaw)
        );
        assert_eq!(got[2].0, "error.file");
        assert_eq!(got[3].1, "github.com/vmware-tanzu/velero/pkg/x.(*r).f");
        assert_eq!(
            got[4].1,
            "rpc error: code = Unknown desc = \"bucket\" not found\n\tat x"
        );
        assert_eq!(got[5], ("id".into(), "87".into(), ValueKind::JsonRaw));
        assert_eq!(got[6].1, r#"[1,"a]"]"#);
        assert_eq!(got[7], ("ok".into(), "true".into(), ValueKind::JsonRaw));
        assert_eq!(got[8], ("z".into(), "null".into(), ValueKind::JsonRaw));
        assert_eq!(
            rec.field(l, b"error.message").map(|v| v.kind),
            Some(ValueKind::JsonString)
        );
    }

    #[test]
    fn hclog_shape_and_whitespace() {
        let line = " {\"@level\": \"warn\", \"@message\": \"plugin said \\\"hi\\\"\", \"@timestamp\": \"2025-01-01T00:00:00.000000Z\", \"logSource\": \"/go/src/velero-plugin-for-aws/x.go:1\", \"@logSourceSetBy\": \"plugin\"}\r\n";
        let rec = ok(line);
        let l = line.as_bytes();
        assert_eq!(rec.level, Some(Level::Warning));
        assert_eq!(rec.msg.unwrap().text(l), "plugin said \"hi\"");
        assert_eq!(rec.time.unwrap().get(l), b"2025-01-01T00:00:00.000000Z");
        assert_eq!(rec.fields.len(), 2);
    }

    #[test]
    fn empty_msg_and_odd_members() {
        let rec = ok(r#"{"level":"info","msg":"","time":"t"}"#);
        assert_eq!(rec.msg.map(|m| m.span.len()), Some(0));
        let rec = ok(r#"{}"#);
        assert_eq!((rec.level, rec.msg, rec.fields.len()), (None, None, 0));
        // Non-string level: no level, not a field.
        let rec = ok(r#"{"level":3,"msg":"x"}"#);
        assert_eq!((rec.level, rec.fields.len()), (None, 0));
    }

    #[test]
    fn rejects() {
        for line in [
            "",
            "{",
            "{\"a\":1",
            "{\"a\":1} trailing",
            "{\"a\" 1}",
            "{a:1}",
            "[1,2]",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":\"unterminated}",
            "{\"a\":{\"b\":1}",
        ] {
            let mut rec = Record::new();
            assert!(!parse(line.as_bytes(), &mut rec), "accepted: {line}");
        }
    }
}
