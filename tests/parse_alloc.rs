//! Proves the common parse path allocates nothing: a counting global allocator (its own test
//! binary, so nothing else shares it) counts the allocations made by this thread while parsing
//! real-shaped lines into one reused `Record`, after a warm-up pass.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use veloki::parse::{parse_into, Format, Hint, Record};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the thread-local may be gone while a thread shuts down.
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: delegates to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

const LINES: &[(&str, Hint, Format)] = &[
    (
        r#"time="2025-09-13T02:00:03Z" level=info msg="Setting up backup log" backup=velero/core-cl1-daily-backup-20250913020001 logSource="pkg/controller/backup_controller.go:712""#,
        Hint::Velero,
        Format::LogrusText,
    ),
    (
        r#"time="2025-09-13T02:01:10Z" level=error msg="backup failed" backuprequest=velero/core-cl1-daily-backup-20250913020001 controller=backup error="rpc error: code = Unknown desc = AccessDenied: Access Denied\n\tstatus code: 403" error.file="/go/src/github.com/vmware-tanzu/velero/pkg/persistence/object_store.go:289" error.function="github.com/vmware-tanzu/velero/pkg/persistence.(*objectBackupStore).PutBackup" logSource="pkg/controller/backup_controller.go:343""#,
        Hint::Auto,
        Format::LogrusText,
    ),
    (
        r#"time="2025-01-01T00:00:00Z" level=info msg="Processing item" backup=velero/b logSource="pkg/backup/backup.go:1" name=n namespace= progress= resource=pods worker count=1"#,
        Hint::Velero,
        Format::LogrusText,
    ),
    (
        "[GIN] 2025/09/13 - 10:15:30 | 200 |      41.237\u{b5}s |        10.1.0.1 | GET      \"/api/v1/health\"",
        Hint::Gin,
        Format::GinAccess,
    ),
    (
        "[GIN] 2025/09/13 - 10:17:00 | 302 |  312.845119ms |    192.168.1.25 | GET      \"/api/v1/auth/oidc/callback?state=Zm9vYmFy&code=2b1c7e0a-3f2d-4c55.9e1f\"",
        Hint::Auto,
        Format::GinAccess,
    ),
    (
        "[GIN] 2025/09/13 - 10:15:30 |\x1b[97;42m 200 \x1b[0m|\x1b[90;47m 97.514\u{b5}s \x1b[0m| fd00:10:244:1::1a2b |\x1b[97;44m GET     \x1b[0m \"/api/v1/backups/a b\\\"c/details\"",
        Hint::Gin,
        Format::GinAccess,
    ),
    (
        r#"{"backup":{"Namespace":"velero","Name":"x"},"controller":"backup-finalizer","level":"info","logSource":"pkg/controller/backup_finalizer_controller.go:1","msg":"Excluding namespaces: \u003cnone\u003e","time":"2025-01-27T19:52:56Z"}"#,
        Hint::Velero,
        Format::LogrusJson,
    ),
];

#[test]
fn no_allocation_per_line_after_warm_up() {
    let mut rec = Record::new();
    // Warm-up: the record's field vector reaches its working capacity.
    for (line, hint, _) in LINES {
        parse_into(line.as_bytes(), *hint, &mut rec);
    }
    let before = allocations();
    for _ in 0..1000 {
        for (line, hint, format) in LINES {
            parse_into(line.as_bytes(), *hint, &mut rec);
            assert!(rec.format == *format);
        }
    }
    let after = allocations();
    assert_eq!(
        after - before,
        0,
        "allocations while parsing {} lines",
        1000 * LINES.len()
    );

    // The counter works: unescaping a value with escapes does allocate.
    let line = LINES[1].0.as_bytes();
    parse_into(line, Hint::Velero, &mut rec);
    let err = rec.field(line, b"error").expect("error field");
    let before = allocations();
    let text = err.text(line);
    assert!(text.contains('\n'));
    assert!(allocations() > before);
}
