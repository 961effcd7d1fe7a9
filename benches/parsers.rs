//! Parser throughput in lines per second (and bytes per second) on realistic lines, one core.
//!
//! `cargo bench --bench parsers -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veloki::parse::{parse_into, Hint, Record};

/// A realistic mix of Velero server lines (text format).
const LOGRUS_TEXT: &[&str] = &[
    r#"time="2025-09-13T02:00:00Z" level=info msg="Schedule is due, going to submit backup." logSource="pkg/controller/schedule_controller.go:262" schedule=velero/daily"#,
    r#"time="2025-09-13T02:00:03Z" level=info msg="Setting up backup log" backup=velero/core-cl1-daily-backup-20250913020001 logSource="pkg/controller/backup_controller.go:712""#,
    r#"time="2025-09-13T02:00:04Z" level=info msg="Processing item" backup=velero/core-cl1-daily-backup-20250913020001 logSource="pkg/backup/backup.go:445" name=nginx-7c5ddbdf54-x2x9k namespace=nginx progress= resource=pods"#,
    r#"time="2025-09-13T02:00:04Z" level=info msg="Backed up 42 items out of an estimated total of 120 (estimate will change throughout the backup)" backup=velero/core-cl1-daily-backup-20250913020001 logSource="pkg/backup/backup.go:505" name=nginx namespace= progress= resource=namespaces"#,
    r#"time="2025-09-13T02:01:10Z" level=error msg="backup failed" backuprequest=velero/core-cl1-daily-backup-20250913020001 controller=backup error="rpc error: code = Unknown desc = AccessDenied: Access Denied\n\tstatus code: 403, request id: 7XN6, host id: abc=" error.file="/go/src/github.com/vmware-tanzu/velero/pkg/persistence/object_store.go:289" error.function="github.com/vmware-tanzu/velero/pkg/persistence.(*objectBackupStore).PutBackup" logSource="pkg/controller/backup_controller.go:343""#,
    r#"time="2021-09-28T13:54:58Z" level=debug msg=gcController.enqueueAllBackups controller=gc logSource="pkg/controller/gc_controller.go:91""#,
    r#"time="2025-09-13T02:05:00Z" level=info msg="Starting workers" controller=backupstoragelocation controllerGroup=velero.io controllerKind=BackupStorageLocation logSource="/go/pkg/mod/github.com/bombsimon/logrusr/v3@v3.0.0/logrusr.go:108" worker count=1"#,
    r#"time="2025-09-13T02:05:01Z" level=info msg="BackupStorageLocations is valid, marking as available" backup-storage-location=velero/default controller=backup-storage-location logSource="pkg/controller/backup_storage_location_controller.go:128""#,
];

const LOGRUS_JSON: &[&str] = &[
    r#"{"backuprequest":"velero/velero-default-20250101000358","controller":"backup","level":"debug","logSource":"pkg/controller/backup_controller.go:209","msg":"Getting backup","time":"2025-01-27T19:52:56Z"}"#,
    r#"{"backup":"velero/core-cl1-daily-backup-20250913020001","level":"info","logSource":"pkg/controller/backup_controller.go:712","msg":"Setting up backup log","time":"2025-09-13T02:00:03Z"}"#,
    r#"{"backup":{"Namespace":"velero","Name":"core-cl1-daily-backup-20250913020001"},"controller":"backup-finalizer","level":"info","logSource":"pkg/controller/backup_finalizer_controller.go:120","msg":"Excluding namespaces: \u003cnone\u003e","time":"2025-09-13T02:01:11Z"}"#,
    r#"{"backuprequest":"velero/b","controller":"backup","error.file":"/go/src/github.com/vmware-tanzu/velero/pkg/persistence/object_store.go:289","error.function":"github.com/vmware-tanzu/velero/pkg/persistence.(*objectBackupStore).PutBackup","error.message":"rpc error: code = Unknown desc = AccessDenied: Access Denied","level":"error","logSource":"pkg/controller/backup_controller.go:343","msg":"backup failed","time":"2025-09-13T02:01:10Z"}"#,
];

/// velero-manager's access lines (gin v1.10.1), § 6.3 of the reference; probes dominate.
const GIN: &[&str] = &[
    "[GIN] 2025/09/13 - 10:15:30 | 200 |      41.237\u{b5}s |        10.1.0.1 | GET      \"/api/v1/health\"",
    "[GIN] 2025/09/13 - 10:15:31 | 200 |    2.513887ms |  10.100.102.110 | GET      \"/metrics\"",
    "[GIN] 2025/09/13 - 10:15:35 | 200 |      38.112\u{b5}s |        10.1.0.1 | GET      \"/api/v1/health\"",
    "[GIN] 2025/09/13 - 10:16:02 | 401 |       18.22\u{b5}s |    192.168.1.25 | GET      \"/api/v1/backups\"",
    "[GIN] 2025/09/13 - 10:16:09 | 201 |   48.911302ms |    192.168.1.25 | POST     \"/api/v1/backups\"",
    "[GIN] 2025/09/13 - 10:17:00 | 302 |  312.845119ms |    192.168.1.25 | GET      \"/api/v1/auth/oidc/callback?state=Zm9vYmFy&code=2b1c7e0a-3f2d-4c55.9e1f\"",
    "[GIN] 2025/09/13 - 10:17:30 | 404 |      35.002\u{b5}s | fd00:10:244:1::1a2b | GET      \"/api/v1/backups/a b\\\"c/details\"",
    "[GIN] 2025/09/13 - 10:19:00 | 200 |         1m15s |    192.168.1.25 | GET      \"/api/v1/backups/x/logs\"",
];

fn bench_set(c: &mut Criterion, name: &str, lines: &[&str], hint: Hint) {
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("lines", |b| {
        let mut rec = Record::new();
        b.iter(|| {
            for line in lines {
                parse_into(black_box(line.as_bytes()), hint, &mut rec);
                black_box(&rec);
            }
        })
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("bytes", |b| {
        let mut rec = Record::new();
        b.iter(|| {
            for line in lines {
                parse_into(black_box(line.as_bytes()), hint, &mut rec);
                black_box(&rec);
            }
        })
    });
    group.finish();
}

fn parsers(c: &mut Criterion) {
    bench_set(c, "logrus_text", LOGRUS_TEXT, Hint::Velero);
    bench_set(c, "logrus_json", LOGRUS_JSON, Hint::Velero);
    bench_set(c, "gin", GIN, Hint::Gin);
    let auto: Vec<&str> = LOGRUS_TEXT
        .iter()
        .chain(GIN)
        .chain(LOGRUS_JSON)
        .copied()
        .collect();
    bench_set(c, "dispatch_auto_mix", &auto, Hint::Auto);
}

criterion_group!(benches, parsers);
criterion_main!(benches);
