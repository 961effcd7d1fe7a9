//! Velero CLI output of backup/restore CronJob pods (`velero backup create … --wait`).
//!
//! ```text
//! cli       = *"." (submitted / completed / info / error) / 1*"."
//! submitted = kind " request " quoted " submitted successfully."
//! completed = kind " completed with status: " phase "." [… "`velero " lkind " describe " name "`" …]
//! info      = "Waiting for " … / "Creating backup from schedule" … / "Run `velero " …
//! error     = "An error occurred: " … / "Error waiting: " …
//! kind      = "Backup" / "Restore"
//! ```
//!
//! The waiting dots are printed one per poll without a newline, so they may precede the
//! `Backup completed …` text on the same line. The message is the line without leading dots.

use memchr::memmem;

use super::combinators::{quoted, span_of, Error};
use super::{CliEvent, Format, Level, Record, Span, Value, ValueKind};

/// Parses one line into `rec`; false if the line is not Velero CLI output.
pub fn parse(line: &[u8], rec: &mut Record) -> bool {
    let trimmed = trim_end(line);
    let dots = trimmed.iter().take_while(|&&b| b == b'.').count();
    let text = &trimmed[dots..];
    let Some(event) = event(line, text, dots > 0) else {
        return false;
    };
    rec.format = Format::VeleroCli;
    if event == CliEvent::Error {
        rec.level = Some(Level::Error);
    }
    rec.cli = Some(event);
    let msg = if text.is_empty() { trimmed } else { text };
    rec.msg = Some(Value {
        span: span_of(line, msg),
        kind: ValueKind::Bare,
    });
    true
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\r' | b'\n' | b'\t'))
        .map_or(0, |p| p + 1);
    &b[..n]
}

fn event(line: &[u8], text: &[u8], had_dots: bool) -> Option<CliEvent> {
    if text.is_empty() {
        return had_dots.then_some(CliEvent::Info);
    }
    if let Some((is_backup, rest)) = kind_prefix(text) {
        if let Some(rest) = rest.strip_prefix(b" request ") {
            let (after, name) = quoted::<Error>(rest).ok()?;
            if !after.starts_with(b" submitted successfully") {
                return None;
            }
            let name = span_of(line, name);
            return Some(if is_backup {
                CliEvent::BackupSubmitted { name }
            } else {
                CliEvent::RestoreSubmitted { name }
            });
        }
        if let Some(rest) = rest.strip_prefix(b" completed with status: ") {
            let n = rest
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if n == 0 {
                return None;
            }
            let phase = span_of(line, &rest[..n]);
            let hint: &[u8] = if is_backup {
                b"`velero backup describe "
            } else {
                b"`velero restore describe "
            };
            let name = describe_name(line, &rest[n..], hint);
            return Some(if is_backup {
                CliEvent::BackupCompleted { phase, name }
            } else {
                CliEvent::RestoreCompleted { phase, name }
            });
        }
        return None;
    }
    const INFO: [&[u8]; 5] = [
        b"Waiting for backup to complete",
        b"Waiting for restore to complete",
        b"Creating backup from schedule",
        b"Run `velero backup ",
        b"Run `velero restore ",
    ];
    const ERROR: [&[u8]; 2] = [b"An error occurred: ", b"Error waiting: "];
    if INFO.iter().any(|p| text.starts_with(p)) {
        Some(CliEvent::Info)
    } else if ERROR.iter().any(|p| text.starts_with(p)) {
        Some(CliEvent::Error)
    } else {
        None
    }
}

/// `kind = "Backup" / "Restore"`; true for a backup.
fn kind_prefix(text: &[u8]) -> Option<(bool, &[u8])> {
    if let Some(r) = text.strip_prefix(b"Backup") {
        Some((true, r))
    } else {
        text.strip_prefix(b"Restore").map(|r| (false, r))
    }
}

/// The `<name>` of the first `` `velero backup describe <name>` `` hint in `rest`.
fn describe_name(line: &[u8], rest: &[u8], hint: &[u8]) -> Option<Span> {
    let at = memmem::find(rest, hint)? + hint.len();
    let tail = rest.get(at..)?;
    let end = memchr::memchr2(b'`', b' ', tail)?;
    (end > 0).then(|| span_of(line, &tail[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str) -> Option<(CliEvent, Option<Level>, String)> {
        let mut rec = Record::new();
        parse(line.as_bytes(), &mut rec).then(|| {
            assert_eq!(rec.format, Format::VeleroCli);
            (
                rec.cli.unwrap(),
                rec.level,
                rec.msg.unwrap().text(line.as_bytes()).into_owned(),
            )
        })
    }

    fn text(line: &str, s: Span) -> &str {
        std::str::from_utf8(s.get(line.as_bytes())).unwrap()
    }

    #[test]
    fn backup_lines() {
        let line = r#"Backup request "core-cl1-20250913020000" submitted successfully."#;
        let (ev, level, msg) = run(line).unwrap();
        let CliEvent::BackupSubmitted { name } = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(text(line, name), "core-cl1-20250913020000");
        assert_eq!((level, msg.as_str()), (None, line));

        let line = "Backup completed with status: Completed. You may check for more information using the commands `velero backup describe core-cl1-20250913020000` and `velero backup logs core-cl1-20250913020000`.";
        let (ev, _, _) = run(line).unwrap();
        let CliEvent::BackupCompleted { phase, name } = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(text(line, phase), "Completed");
        assert_eq!(text(line, name.unwrap()), "core-cl1-20250913020000");

        let line = "..........Backup completed with status: PartiallyFailed. You may check for more information using the commands `velero backup describe cluster-name-centralized-20250913-020000` and `velero backup logs cluster-name-centralized-20250913-020000`.";
        let (ev, _, msg) = run(line).unwrap();
        let CliEvent::BackupCompleted { phase, name } = ev else {
            panic!("{ev:?}")
        };
        assert_eq!(text(line, phase), "PartiallyFailed");
        assert_eq!(
            text(line, name.unwrap()),
            "cluster-name-centralized-20250913-020000"
        );
        assert!(msg.starts_with("Backup completed"));

        let (ev, _, _) = run("Backup completed with status: FailedValidation.").unwrap();
        assert!(matches!(ev, CliEvent::BackupCompleted { name: None, .. }));
    }

    #[test]
    fn restore_lines() {
        let line = r#"Restore request "core-cl1-20250913020000-20250914" submitted successfully."#;
        let CliEvent::RestoreSubmitted { name } = run(line).unwrap().0 else {
            panic!()
        };
        assert_eq!(text(line, name), "core-cl1-20250913020000-20250914");
        let line = "Restore completed with status: Failed. You may check for more information using the commands `velero restore describe r1` and `velero restore logs r1`.";
        let CliEvent::RestoreCompleted { phase, name } = run(line).unwrap().0 else {
            panic!()
        };
        assert_eq!(
            (text(line, phase), text(line, name.unwrap())),
            ("Failed", "r1")
        );
    }

    #[test]
    fn info_and_error_lines() {
        let info = [
            "Waiting for backup to complete. You may safely press ctrl-c to stop waiting - your backup will continue in the background.",
            "Waiting for restore to complete. You may safely press ctrl-c to stop waiting - your restore will continue in the background.",
            "..........",
            ".",
            "....   ",
            "Creating backup from schedule, all other filters are ignored.",
            "Run `velero backup describe b1` or `velero backup logs b1` for more details.",
        ];
        for line in info {
            let (ev, level, _) = run(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!((ev, level), (CliEvent::Info, None), "{line}");
        }
        for line in [
            "An error occurred: backups.velero.io \"x\" already exists",
            "Error waiting: unable to watch backups.",
        ] {
            let (ev, level, msg) = run(line).unwrap();
            assert_eq!(
                (ev, level, msg.as_str()),
                (CliEvent::Error, Some(Level::Error), line)
            );
        }
        for line in [
            "",
            "hello",
            "Backup request x submitted successfully.",
            "Backup request \"x\" was submitted",
            "Backup completed with status: .",
            "Backups are great",
            "Restore",
            "... and more",
        ] {
            assert!(run(line).is_none(), "{line}");
        }
    }
}
