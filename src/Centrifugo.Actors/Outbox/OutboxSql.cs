using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Centrifugo.Actors.Outbox;

/// <summary>
/// Every SQL statement the outbox consumer issues, built once per consumer from validated, quoted identifiers.
/// </summary>
/// <remarks>
/// Table names from the configuration (outbox_table_name, dead_letter_table_name) must be
/// <c>[A-Za-z_][A-Za-z0-9_]*</c>, optionally <c>schema.table</c>. Centrifugo interpolates them unquoted, so
/// PostgreSQL folds them to lower case; to address the very same table we fold to lower case too and then quote
/// (<c>MyOutbox</c> → <c>"myoutbox"</c>). Nothing from configuration is ever interpolated raw.
/// </remarks>
internal sealed partial class OutboxSql
{
    public OutboxSql(string outboxTableName, string deadLetterTableName)
    {
        OutboxTable = QuoteTableName(outboxTableName, "outbox_table_name");
        DeadLetterTable = QuoteTableName(deadLetterTableName, "dead_letter_table_name");

        // BEGIN travels in the same round trip as the lock and the SELECT; COMMIT with the DELETE.
        Begin = "BEGIN ISOLATION LEVEL READ COMMITTED";
        UsePayloadType("bytea");
        Head = $"SELECT id FROM {OutboxTable} WHERE partition = $1 ORDER BY id ASC LIMIT 1";
        Delete = $"DELETE FROM {OutboxTable} WHERE id = ANY($1)";
        InsertDeadLetters = BuildInsertDeadLetters(["id", "method", "payload", "partition"], overridingSystemValue: false);
        CountPending = $"SELECT count(*) FROM {OutboxTable} WHERE partition = $1";
        // Loose index scan over the (partition, id) index: one index descent per non-empty partition, so one
        // query finds every partition with work, whatever the number of partitions or rows. $1 = num_partitions.
        NonEmptyPartitions =
            "WITH RECURSIVE p(partition) AS (" +
            $"(SELECT o.partition FROM {OutboxTable} o WHERE o.partition >= 0 ORDER BY o.partition LIMIT 1) " +
            $"UNION ALL SELECT (SELECT o.partition FROM {OutboxTable} o WHERE o.partition > p.partition ORDER BY o.partition LIMIT 1) " +
            "FROM p WHERE p.partition IS NOT NULL AND p.partition < $1) " +
            "SELECT partition FROM p WHERE partition IS NOT NULL AND partition < $1";
        // LIKE … INCLUDING DEFAULTS keeps extra NOT NULL DEFAULT columns of the outbox insertable; the id default
        // (the outbox's sequence) is dropped so that the outbox table can still be dropped on its own.
        CreateDeadLetterTable =
            $"CREATE TABLE IF NOT EXISTS {DeadLetterTable} (LIKE {OutboxTable} INCLUDING DEFAULTS); " +
            $"ALTER TABLE {DeadLetterTable} ALTER COLUMN id DROP DEFAULT";
        AddDeadLetterColumns =
            $"ALTER TABLE {DeadLetterTable} ADD COLUMN IF NOT EXISTS consumer text, " +
            "ADD COLUMN IF NOT EXISTS reason text, " +
            "ADD COLUMN IF NOT EXISTS failed_at timestamptz NOT NULL DEFAULT now()";
    }

    /// <summary>Quoted, lower-cased outbox table, e.g. <c>"public"."outbox"</c>.</summary>
    public string OutboxTable { get; }

    /// <summary>Quoted, lower-cased dead-letter table.</summary>
    public string DeadLetterTable { get; }

    public string Begin { get; }

    /// <summary>
    /// A read of the partition's head ($1 partition, $2 partition_select_limit, $3 partition_select_max_bytes, $4
    /// payload_max_bytes): id, method, payload, and the payload's size in bytes. Rows stop once the payloads before a
    /// row reach the byte budget (the first row always comes); a payload over the maximum comes back NULL with its size,
    /// so it is never sent to this process. The limit is applied first, then the running sum over at most that many
    /// rows: sizes come from the column's header (no detoasting) for bytea and text, and the payloads of rows past the
    /// budget are never read.
    /// </summary>
    public string Select { get; private set; } = "";

    /// <summary>Read-ahead: <see cref="Select"/> of the rows after the batch in flight ($1 partition, $2 last id, $3 limit, $4 budget, $5
    /// maximum).</summary>
    public string SelectAfter { get; private set; } = "";

    /// <summary>The SQL expression of a payload's size in bytes, by the payload column's type.</summary>
    public string PayloadSize { get; private set; } = "";

    /// <summary>
    /// Sizes payloads of <paramref name="formatType"/> (the payload column's <c>format_type</c>): bytea and text types by
    /// <c>octet_length</c> of the value, json and jsonb by that of their text (json is stored as its text; jsonb is
    /// printed for it, as it is for sending).
    /// </summary>
    public void UsePayloadType(string formatType)
    {
        PayloadSize = formatType is "json" or "jsonb" ? "octet_length(payload::text)" : "octet_length(payload)";
        Select = BuildSelect(after: false);
        SelectAfter = BuildSelect(after: true);
    }

    private string BuildSelect(bool after)
    {
        var (limit, budget, max) = after ? ("$3", "$4", "$5") : ("$2", "$3", "$4");
        return $"SELECT id, method, CASE WHEN size <= {max} THEN payload END, size FROM (" +
               "SELECT id, method, payload, size, sum(size) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS upto FROM (" +
               $"SELECT id, method, payload, coalesce({PayloadSize}, 0) AS size FROM {OutboxTable} " +
               $"WHERE partition = $1{(after ? " AND id > $2" : "")} ORDER BY id ASC LIMIT {limit}) l) w " +
               $"WHERE upto - size < {budget} ORDER BY id";
    }
    /// <summary>The partition's first id ($1 partition): checks that rows read ahead are still the head after re-locking.</summary>
    public string Head { get; }
    public string Delete { get; }
    /// <summary>
    /// Dead-letter copy ($1 consumer, $2 ids, $3 reasons). Until <see cref="UseDeadLetterColumns"/> is called it copies
    /// Centrifugo's four columns; after start-up it copies every column the outbox and the dead-letter table share.
    /// </summary>
    public string InsertDeadLetters { get; private set; }

    /// <summary>The bookkeeping columns the consumer writes itself (never copied from the outbox).</summary>
    public static readonly IReadOnlySet<string> DeadLetterOwnColumns = new HashSet<string>(StringComparer.Ordinal)
        { "consumer", "reason", "failed_at" };

    /// <summary>Copies exactly <paramref name="columns"/> (outbox column names, case kept) into the dead-letter table.</summary>
    public void UseDeadLetterColumns(IReadOnlyList<string> columns, bool overridingSystemValue)
    {
        InsertDeadLetters = BuildInsertDeadLetters(columns, overridingSystemValue);
        CopiedColumns = columns;
    }

    /// <summary>The columns a dead-letter copy takes from the outbox (a replay copies them back, id excepted).</summary>
    public IReadOnlyList<string> CopiedColumns { get; private set; } = ["id", "method", "payload", "partition"];

    private string BuildInsertDeadLetters(IReadOnlyList<string> columns, bool overridingSystemValue)
    {
        var target = string.Join(", ", columns.Select(QuoteIdentifier));
        var source = string.Join(", ", columns.Select(c => "o." + QuoteIdentifier(c)));
        return $"INSERT INTO {DeadLetterTable} ({target}, consumer, reason) " +
               (overridingSystemValue ? "OVERRIDING SYSTEM VALUE " : "") +
               $"SELECT {source}, $1, d.reason FROM {OutboxTable} o " +
               "JOIN unnest($2::bigint[], $3::text[]) AS d(id, reason) ON o.id = d.id";
    }

    /// <summary>$1 = quoted table name as text: its live columns in order (name, SQL type, NOT NULL, has default, generated, identity
    /// always).</summary>
    public const string Columns =
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull, atthasdef, attgenerated <> '', attidentity = 'a' " +
        "FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum";
    public string CountPending { get; }
    public string NonEmptyPartitions { get; }
    public string CreateDeadLetterTable { get; }
    public string AddDeadLetterColumns { get; }

    /// <summary>A statement that only proves the session (and the locks of its transaction) still alive.</summary>
    public const string StillHeld = "SELECT 1";

    public const string Commit = "COMMIT";
    public const string Rollback = "ROLLBACK";

    /// <summary>
    /// The partition's locks. $1 = the quoted outbox table as text, $2 = the partition, $3 = the transaction fence in ms,
    /// $4 = the consumer's name key (<see cref="OutboxLockKey.For"/>), $5 (<paramref name="centrifugoCompatible"/> only)
    /// = Centrifugo's lock name of the partition (<see cref="OutboxLockKey.CentrifugoLockName"/>).
    /// The first column is the lock (try-lock: true when every lock was taken).
    /// The lock that fences is (the table's oid, partition): whatever owns the table's partition, under any consumer
    /// name (two deployments, a rename in a rolling update, two config entries), waits for it. The oid is resolved on
    /// every pass, in the session that then reads, the way PostgreSQL resolves the SELECT's table (search_path,
    /// quoting), so the lock always belongs to the table the rows come from, also after the table was re-created.
    /// (name key, partition) is the key of versions before this one, also taken so that a node of such a version is
    /// excluded during a rolling upgrade. With <paramref name="centrifugoCompatible"/> the pass also takes Centrifugo's own
    /// lock of the partition, so Centrifugo's built-in consumer on the same table is excluded as well. Every pass takes
    /// the locks in this one order, so two passes never wait for each other crosswise.
    /// Then, for this transaction only: <c>idle_in_transaction_session_timeout</c> = the fence: the transaction sits idle
    /// while its batch is delivered over HTTP, which never takes longer than the fence (it is derived from api.timeout),
    /// so a live node is never cut off, while a frozen one (SIGSTOP, a stalled VM) loses its session and with it the
    /// partition's locks after the fence, instead of holding the partition until it wakes up. A server timeout shorter
    /// than the fence (managed PostgreSQL) is thereby raised for these transactions. <c>statement_timeout</c> bounds every
    /// later statement of the transaction by the same fence (the idle timer does not run while a statement is active);
    /// none of them can legitimately take that long (reads are bounded by rows and bytes, the DELETE and the dead-letter
    /// copy by the batch); the lock statement itself still runs under the session's setting, so waiting for the lock (a
    /// hand-over) is not cut. Neither timer ends a statement whose backend is blocked sending its result to a frozen
    /// owner (a stopped process's kernel keeps acknowledging with a zero window, and PostgreSQL serves a cancel only
    /// between messages): <c>tcp_user_timeout</c> makes the server's kernel drop such a connection once its data has
    /// waited that long, which ends the session and frees the locks. And <c>synchronous_commit</c> off:
    /// its COMMIT (the DELETE of delivered rows, the dead-letter copy) returns without waiting for the WAL flush, which
    /// otherwise sat between every delivered batch and the next read of the partition. A server crash can lose only such
    /// a commit; its rows are then delivered again, which at-least-once already allows (docs/design.md, "Latency").
    /// </summary>
    public static string Lock(bool tryLock, bool centrifugoCompatible = false)
    {
        var (take, join) = tryLock ? ("pg_try_advisory_xact_lock", " AND ") : ("pg_advisory_xact_lock", ", ");
        var locks = $"{take}($1::regclass::oid::int, $2){join}{take}($4, $2)" +
                    (centrifugoCompatible ? $"{join}{take}(hashtext($5))" : "");
        return $"SELECT {(tryLock ? $"({locks})" : locks)}" +
               ", set_config('idle_in_transaction_session_timeout', $3::text, true), set_config('statement_timeout', $3::text, true)" +
               ", set_config('tcp_user_timeout', $3::text, true), set_config('synchronous_commit', 'off', true)";
    }

    /// <summary>
    /// $1 = Centrifugo's lock names of the partitions ($2 their indexes, same order): the partitions whose Centrifugo lock
    /// another session holds now (pg_locks shows a one-bigint advisory key as classid = high, objid = low 32 bits).
    /// </summary>
    public const string CentrifugoLocksHeld =
        "SELECT n.partition FROM unnest($1::text[], $2::int[]) AS n(name, partition) WHERE EXISTS (" +
        "SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid <> pg_backend_pid() " +
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) " +
        "AND l.classid::bigint = (hashtext(n.name)::bigint >> 32) & 4294967295 " +
        "AND l.objid::bigint = hashtext(n.name)::bigint & 4294967295) ORDER BY n.partition";

    /// <summary>The session's idle_in_transaction_session_timeout in ms (0 = off).</summary>
    public const string IdleInTransactionTimeout =
        "SELECT setting::bigint FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'";

    /// <summary>$1 = quoted table name as text: true when an index of the table has partition as its first column.</summary>
    public const string HasPartitionIndex =
        "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] " +
        "WHERE i.indrelid = to_regclass($1) AND a.attname = 'partition')";

    /// <summary>The index the census and the reads need, as the start-up warning prints it.</summary>
    public string CreatePartitionIndex =>
        $"CREATE INDEX CONCURRENTLY IF NOT EXISTS {QuoteIdentifier(OutboxTable.Split('.')[^1].Trim('"') + "_partition_id_idx")} " +
        $"ON {OutboxTable} (partition, id)";

    /// <summary>$1 = quoted table name as text; true when the relation exists.</summary>
    public const string TableExists = "SELECT to_regclass($1) IS NOT NULL";

    /// <summary>$1 = quoted table name as text; how many of the dead-letter bookkeeping columns exist.</summary>
    public const string CountDeadLetterColumns =
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass($1) " +
        "AND attname IN ('consumer', 'reason', 'failed_at') AND NOT attisdropped";

    /// <summary>Serialises concurrent start-ups (several nodes) around the dead-letter DDL.</summary>
    public const string LockDdl = "SELECT pg_advisory_xact_lock(hashtext('centrifugo-actors:dead-letter-ddl'))";

    /// <summary>Validates a configured table name and returns it lower-cased and quoted.</summary>
    /// <exception cref="ArgumentException">The name is not <c>[schema.]table</c> made of identifier characters.</exception>
    public static string QuoteTableName(string name, string setting = "table name")
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!TableNamePattern().IsMatch(name))
        {
            throw new ArgumentException(
                $"{setting} '{name}' is invalid: use [A-Za-z_][A-Za-z0-9_]* optionally prefixed by a schema (schema.table).",
                nameof(name));
        }

        return string.Join('.', name.Split('.').Select(part => QuoteIdentifier(part.ToLowerInvariant())));
    }

    /// <summary>Quotes an identifier exactly as given (case preserved), doubling embedded quotes.</summary>
    public static string QuoteIdentifier(string identifier) =>
        "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$")]
    private static partial Regex TableNamePattern();
}

/// <summary>
/// The keys of an outbox partition's advisory locks besides the table's (<see cref="OutboxSql.Lock"/>).
/// </summary>
internal static class OutboxLockKey
{
    /// <summary>
    /// The name key of versions before the table key: first 4 bytes (big-endian) of SHA-256("centrifugo-actors:" +
    /// consumer name). Still taken with the table's lock so that a node of such a version is excluded during a rolling
    /// upgrade; never change it.
    /// </summary>
    public static int For(string consumerName)
    {
        ArgumentNullException.ThrowIfNull(consumerName);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("centrifugo-actors:" + consumerName), hash);
        return BinaryPrimitives.ReadInt32BigEndian(hash);
    }

    /// <summary>
    /// The name Centrifugo's built-in consumer hashes for its lock of a partition: its consumer name and the partition
    /// index concatenated (internal/consuming/postgresql.go, <c>pg_advisory_xact_lock(hashtext($1))</c>).
    /// </summary>
    public static string CentrifugoLockName(string consumerName, int partition) =>
        "centrifugo_partition_lock_" + consumerName + partition.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
