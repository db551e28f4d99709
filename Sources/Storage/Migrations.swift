import Foundation
import SQLKit

/// Versioned schema changes, applied in order at start-up. Each is written once with
/// placeholders for the types that differ between SQLite and PostgreSQL:
/// `{id}` (auto-increment primary key), `{json}` (JSON document), `{ctext}` (text compared and
/// range-scanned in byte order, for prefix search), `{signature_index}` (the signature column as
/// PostgreSQL's `text_pattern_ops` needs it).
struct Migration: Sendable {
    let version: Int
    let name: String
    let statements: [String]

    func sql(for kind: DatabaseKind) -> [String] {
        statements.map { s in
            var s = s
            let replacements: [(String, String)] = kind == .sqlite
                ? [("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"), ("{json}", "TEXT"), ("{ctext}", "TEXT")]
                : [("{id}", "BIGSERIAL PRIMARY KEY"), ("{json}", "JSONB"), ("{ctext}", "TEXT COLLATE \"C\"")]
            for (from, to) in replacements { s = s.replacingOccurrences(of: from, with: to) }
            return s
        }
    }
}

enum Migrations {
    static let all: [Migration] = [
        Migration(version: 1, name: "crash index, queue, accounts, symbol uploads", statements: [
            // One row per processed crash: the fields searched and faceted most as typed columns,
            // the whole searchable document as JSON. Times are microseconds since 1970 (UTC).
            """
            CREATE TABLE crashes (
                crash_id TEXT PRIMARY KEY,
                date_processed BIGINT NOT NULL,
                client_crash_date BIGINT,
                product {ctext},
                version {ctext},
                release_channel {ctext},
                platform {ctext},
                platform_version {ctext},
                cpu_arch {ctext},
                process_type {ctext},
                signature {ctext},
                build_id {ctext},
                reason {ctext},
                uptime BIGINT,
                install_age BIGINT,
                document {json} NOT NULL
            )
            """,
            "CREATE INDEX crashes_date ON crashes (date_processed)",
            "CREATE INDEX crashes_signature_date ON crashes (signature, date_processed)",
            "CREATE INDEX crashes_product_version_date ON crashes (product, version, date_processed)",
            "CREATE INDEX crashes_platform_date ON crashes (platform, date_processed)",
            "CREATE INDEX crashes_product_channel_date ON crashes (product, release_channel, date_processed)",
            // The work queue: `rank` orders queues (priority, standard, reprocessing); a leased
            // message is invisible until `visible_at`.
            """
            CREATE TABLE queue_messages (
                id {id},
                queue TEXT NOT NULL,
                rank INTEGER NOT NULL,
                payload TEXT NOT NULL,
                enqueued_at BIGINT NOT NULL,
                visible_at BIGINT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                lease_token TEXT,
                last_error TEXT
            )
            """,
            "CREATE INDEX queue_messages_ready ON queue_messages (rank, visible_at, id)",
            """
            CREATE TABLE dead_letters (
                id {id},
                queue TEXT NOT NULL,
                payload TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                last_error TEXT,
                enqueued_at BIGINT NOT NULL,
                failed_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE accounts (
                id {id},
                email TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL DEFAULT '',
                is_superuser INTEGER NOT NULL DEFAULT 0,
                is_active INTEGER NOT NULL DEFAULT 1,
                created_at BIGINT NOT NULL,
                last_login BIGINT
            )
            """,
            """
            CREATE TABLE account_permissions (
                account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                permission TEXT NOT NULL,
                PRIMARY KEY (account_id, permission)
            )
            """,
            // Only the SHA-256 of a token is stored; the token itself is shown once.
            """
            CREATE TABLE api_tokens (
                id {id},
                account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                token_hash TEXT NOT NULL UNIQUE,
                token_prefix TEXT NOT NULL,
                notes TEXT NOT NULL DEFAULT '',
                permissions TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                last_used_at BIGINT
            )
            """,
            "CREATE INDEX api_tokens_account ON api_tokens (account_id)",
            """
            CREATE TABLE symbol_uploads (
                id {id},
                account_id BIGINT REFERENCES accounts (id) ON DELETE SET NULL,
                filename TEXT NOT NULL,
                size BIGINT NOT NULL,
                content_hash TEXT NOT NULL,
                is_try INTEGER NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL,
                completed_at BIGINT,
                files {json} NOT NULL
            )
            """,
            "CREATE INDEX symbol_uploads_created ON symbol_uploads (created_at)",
        ]),
        Migration(version: 2, name: "collector payload sizes", statements: [
            // One row per submission the collector read to the end, for payload-size statistics.
            """
            CREATE TABLE collector_payloads (
                id {id},
                received_at BIGINT NOT NULL,
                payload_size BIGINT NOT NULL,
                uncompressed_size BIGINT NOT NULL,
                compressed INTEGER NOT NULL,
                outcome TEXT NOT NULL
            )
            """,
            "CREATE INDEX collector_payloads_received ON collector_payloads (received_at)",
        ]),
        Migration(version: 3, name: "late symbols", statements: [
            // Modules that lacked symbols when a crash was processed, and the crashes they affect.
            """
            CREATE TABLE missing_symbols (
                debug_file TEXT NOT NULL,
                debug_id TEXT NOT NULL,
                code_file TEXT NOT NULL DEFAULT '',
                code_id TEXT NOT NULL DEFAULT '',
                first_seen BIGINT NOT NULL,
                next_check BIGINT NOT NULL,
                checks INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (debug_file, debug_id)
            )
            """,
            "CREATE INDEX missing_symbols_next_check ON missing_symbols (next_check)",
            """
            CREATE TABLE missing_symbol_crashes (
                debug_file TEXT NOT NULL,
                debug_id TEXT NOT NULL,
                crash_id TEXT NOT NULL,
                processed_at BIGINT NOT NULL,
                PRIMARY KEY (debug_file, debug_id, crash_id)
            )
            """,
            "CREATE INDEX missing_symbol_crashes_crash ON missing_symbol_crashes (crash_id)",
        ]),
        Migration(version: 4, name: "audit log", statements: [
            // Every grant, revoke and token event: who did what to whom, and when.
            """
            CREATE TABLE audit_log (
                id {id},
                at BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                details TEXT NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX audit_log_at ON audit_log (at)",
        ]),
        Migration(version: 5, name: "product versions", statements: [
            // The real version string of each build (betas report their release's version), for
            // the processor's BetaVersion rule and the VersionString API.
            """
            CREATE TABLE product_versions (
                product {ctext} NOT NULL,
                release_channel {ctext} NOT NULL,
                build_id {ctext} NOT NULL,
                version_string {ctext} NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (product, release_channel, build_id, version_string)
            )
            """,
        ]),
        Migration(version: 6, name: "groups", statements: [
            // Permissions given through groups (Socorro's Hackers and Hackers Plus are created
            // here); an account holds its own permissions and those of its groups.
            "CREATE TABLE permission_groups (id {id}, name TEXT NOT NULL UNIQUE)",
            "CREATE TABLE group_permissions (group_id BIGINT NOT NULL, permission TEXT NOT NULL, PRIMARY KEY (group_id, permission))",
            "CREATE TABLE account_groups (account_id BIGINT NOT NULL, group_id BIGINT NOT NULL, PRIMARY KEY (account_id, group_id))",
            "INSERT INTO permission_groups (name) VALUES ('Hackers')",
            "INSERT INTO permission_groups (name) VALUES ('Hackers Plus')",
            """
            INSERT INTO group_permissions (group_id, permission)
            SELECT g.id, p.permission FROM permission_groups g,
              (SELECT 'reprocess_crashes' AS permission UNION ALL SELECT 'run_long_queries' UNION ALL SELECT 'view_pii' UNION ALL SELECT 'view_rawdump') p
            WHERE g.name IN ('Hackers', 'Hackers Plus')
            """,
            "INSERT INTO group_permissions (group_id, permission) SELECT id, 'run_custom_queries' FROM permission_groups WHERE name = 'Hackers Plus'",
        ]),
        Migration(version: 7, name: "covering index for search", statements: [
            // Super Search filters on a date window and groups by these columns: with them in one
            // index, counts, facets and aggregations read the index range alone instead of one
            // table row (with its JSON document) per crash.
            "CREATE INDEX crashes_date_cover ON crashes (date_processed, product, platform, version, signature, process_type, release_channel)",
        ]),
        Migration(version: 8, name: "missing processed crashes", statements: [
            // Socorro's MissingProcessedCrash: stored raw crashes the republish job found with no
            // processed crash and queued again. Whether one is processed now is read from `crashes`.
            "CREATE TABLE missing_processed_crashes (crash_id TEXT PRIMARY KEY, created BIGINT NOT NULL)",
            "CREATE INDEX missing_processed_crashes_created ON missing_processed_crashes (created)",
        ]),
        Migration(version: 9, name: "processing claims", statements: [
            // One processing run per crash at a time, across processes: a second run (a
            // reprocessing request, a republished message) waits, so an older result can never
            // overwrite a newer one. A claim left by a dead processor expires.
            "CREATE TABLE processing_claims (crash_id TEXT PRIMARY KEY, token TEXT NOT NULL, expires_at BIGINT NOT NULL)",
        ]),
        Migration(version: 10, name: "symbol server", statements: [
            // What Tecken's Upload records beyond the first version of this table.
            "ALTER TABLE symbol_uploads ADD COLUMN bucket_name TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE symbol_uploads ADD COLUMN download_url TEXT",
            "ALTER TABLE symbol_uploads ADD COLUMN redirect_urls TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE symbol_uploads ADD COLUMN skipped_keys TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE symbol_uploads ADD COLUMN ignored_keys TEXT NOT NULL DEFAULT '[]'",
            "CREATE INDEX symbol_uploads_try_created ON symbol_uploads (is_try, created_at)",
            // One row per stored file of an upload, with its .sym header (the code-id lookup).
            """
            CREATE TABLE symbol_files (
                id {id},
                upload_id BIGINT REFERENCES symbol_uploads (id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                is_try INTEGER NOT NULL,
                size BIGINT NOT NULL,
                compressed INTEGER NOT NULL,
                debug_filename TEXT,
                debug_id TEXT,
                code_file TEXT,
                code_id TEXT,
                generator TEXT,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX symbol_files_upload ON symbol_files (upload_id)",
            "CREATE INDEX symbol_files_debug ON symbol_files (debug_filename, debug_id)",
            "CREATE INDEX symbol_files_code ON symbol_files (code_file, code_id)",
            "CREATE INDEX symbol_files_created ON symbol_files (created_at)",
            // What is in the store under each symbol key: the object metadata Tecken keeps on S3
            // objects, kept here so both stores share one skip check.
            """
            CREATE TABLE symbol_objects (
                key TEXT PRIMARY KEY,
                size BIGINT NOT NULL,
                original_size BIGINT NOT NULL,
                original_md5 TEXT NOT NULL,
                compressed INTEGER NOT NULL,
                stored_at BIGINT NOT NULL
            )
            """,
            // Upload v2: files a manifest announced, waiting for the client's direct PUT.
            """
            CREATE TABLE symbol_pending_files (
                upload_id BIGINT NOT NULL REFERENCES symbol_uploads (id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                size BIGINT NOT NULL,
                md5 TEXT NOT NULL,
                compressed INTEGER NOT NULL,
                expires_at BIGINT NOT NULL,
                PRIMARY KEY (upload_id, key)
            )
            """,
            // Symbol-server requests for modules nobody uploaded (the missing-symbols report).
            "ALTER TABLE missing_symbols ADD COLUMN download_misses BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE missing_symbols ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0",
        ]),
        Migration(version: 11, name: "bug associations", statements: [
            // Bugs filed for signatures (Crash Stats' BugAssociation): the Bugs and
            // SignaturesByBugs models and the report's Bugzilla tab read it.
            """
            CREATE TABLE bug_associations (
                bug_id BIGINT NOT NULL,
                signature TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (bug_id, signature)
            )
            """,
            "CREATE INDEX bug_associations_signature ON bug_associations (signature)",
        ]),
        Migration(version: 12, name: "web sign-in", statements: [
            // bcrypt hashes of local passwords (NULL: the account signs in another way).
            "ALTER TABLE accounts ADD COLUMN password_hash TEXT",
            // Server-side sessions: the cookie holds a random token, the table its SHA-256.
            """
            CREATE TABLE web_sessions (
                token_hash TEXT PRIMARY KEY,
                account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                csrf_token TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX web_sessions_expires ON web_sessions (expires_at)",
            "CREATE INDEX web_sessions_account ON web_sessions (account_id)",
        ]),
        Migration(version: 13, name: "access audit and job runs", statements: [
            // Protected-data policy exceptions: people outside the employee domains allowed to
            // stay in the protected groups (who granted it, when, why, until when).
            """
            CREATE TABLE policy_exceptions (
                account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
                granted_by TEXT NOT NULL,
                granted_at BIGINT NOT NULL,
                notes TEXT NOT NULL DEFAULT '',
                expires_at BIGINT
            )
            """,
            // Runs of scheduled jobs (audit, cleanup, retention, export, republish): the site
            // status page, /monitoring/cron/ and /__heartbeat__ read them.
            """
            CREATE TABLE job_runs (
                id {id},
                job TEXT NOT NULL,
                started_at BIGINT NOT NULL,
                finished_at BIGINT,
                ok INTEGER,
                summary TEXT NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX job_runs_job ON job_runs (job, id)",
            // The OpenID Connect subject an account signed in as: the audit asks the issuer
            // about it (users the issuer disabled are deactivated).
            "ALTER TABLE accounts ADD COLUMN oidc_subject TEXT",
        ]),
    ]

    /// Applies the migrations the database lacks, in one transaction each. On PostgreSQL an
    /// advisory lock keeps several processes starting at once from applying the same migration.
    static func apply(_ database: Database, now: Int64) async throws -> [Int] {
        try await database.withConnection { db in
            try await db.raw("""
                CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)
                """).run()
        }
        var applied: [Int] = []
        for migration in all {
            let did = try await database.withTransaction { db -> Bool in
                if database.kind == .postgres { try await db.raw("SELECT pg_advisory_xact_lock(7414501)").run() }
                let existing = try await db.raw("SELECT version FROM schema_migrations WHERE version = \(bind: migration.version)").first()
                if existing != nil { return false }
                for statement in migration.sql(for: database.kind) { try await db.raw(SQLQueryString(statement)).run() }
                try await db.raw("""
                    INSERT INTO schema_migrations (version, name, applied_at) VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: now))
                    """).run()
                return true
            }
            if did { applied.append(migration.version) }
        }
        return applied
    }
}
