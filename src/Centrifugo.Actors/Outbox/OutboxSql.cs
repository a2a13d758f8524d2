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
        Select = $"SELECT id, method, payload FROM {OutboxTable} WHERE partition = $1 ORDER BY id ASC LIMIT $2";
        SelectAfter = $"SELECT id, method, payload FROM {OutboxTable} WHERE partition = $1 AND id > $2 ORDER BY id ASC LIMIT $3";
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
    public string Select { get; }
    /// <summary>Read-ahead: the next rows after the batch in flight ($1 partition, $2 last id, $3 limit).</summary>
    public string SelectAfter { get; }
    /// <summary>The partition's first id ($1 partition): checks that rows read ahead are still the head after re-locking.</summary>
    public string Head { get; }
    public string Delete { get; }
    /// <summary>
    /// Dead-letter copy ($1 consumer, $2 ids, $3 reasons). Until <see cref="UseDeadLetterColumns"/> is called it copies
    /// Centrifugo's four columns; after start-up it copies every column the outbox and the dead-letter table share.
    /// </summary>
    public string InsertDeadLetters { get; private set; }

    /// <summary>The bookkeeping columns the consumer writes itself (never copied from the outbox).</summary>
    public static readonly IReadOnlySet<string> DeadLetterOwnColumns = new HashSet<string>(StringComparer.Ordinal) { "consumer", "reason", "failed_at" };

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

    /// <summary>$1 = quoted table name as text: its live columns in order (name, SQL type, NOT NULL, has default, generated, identity always).</summary>
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
    /// $1 = key1 (consumer hash), $2 = key2 (partition), $3 = the transaction fence in ms. The first column is the lock
    /// (try-lock: its boolean). The second sets, for this transaction only, <c>idle_in_transaction_session_timeout</c> to
    /// the fence: the transaction sits idle while its batch is delivered over HTTP, which never takes longer than the
    /// fence (it is derived from api.timeout), so a live node is never cut off, while a frozen one (SIGSTOP, a stalled
    /// VM) loses its session and with it the partition's lock after the fence, instead of holding the partition until it
    /// wakes up. A server timeout shorter than the fence (managed PostgreSQL) is thereby raised for these transactions.
    /// The third bounds every later statement of the transaction by the same fence (the idle timer does not run while
    /// a statement is active); none of them can legitimately take that long: reads are bounded by partition_select_limit
    /// over the (partition, id) index, the DELETE and the dead-letter copy by the batch. The lock statement itself still
    /// runs under the session's setting, so waiting for the lock (a hand-over) is not cut. Neither timer can end a
    /// statement whose backend is blocked sending its result to a frozen owner (the kernel of a stopped process keeps
    /// acknowledging with a zero window, and PostgreSQL serves a cancel only between messages): the fourth,
    /// <c>tcp_user_timeout</c>, makes the server's kernel drop such a connection once its data has waited that long,
    /// which ends the session and frees the lock. A live owner reads every result at once. The fifth turns <c>synchronous_commit</c> off for the transaction: its COMMIT (the DELETE of delivered rows, the
    /// dead-letter copy) returns without waiting for the WAL flush, which otherwise sat between every delivered batch and
    /// the next read of the partition. A server crash can lose only such a commit; its rows are then delivered again,
    /// which at-least-once already allows (docs/design.md, "Latency").
    /// </summary>
    public static string Lock(bool tryLock) =>
        (tryLock ? "SELECT pg_try_advisory_xact_lock($1, $2)" : "SELECT pg_advisory_xact_lock($1, $2)") +
        ", set_config('idle_in_transaction_session_timeout', $3::text, true), set_config('statement_timeout', $3::text, true)" +
        ", set_config('tcp_user_timeout', $3::text, true), set_config('synchronous_commit', 'off', true)";

    /// <summary>The session's idle_in_transaction_session_timeout in ms (0 = off).</summary>
    public const string IdleInTransactionTimeout =
        "SELECT setting::bigint FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'";

    /// <summary>$1 = quoted table name as text: true when an index of the table has partition as its first column.</summary>
    public const string HasPartitionIndex =
        "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] " +
        "WHERE i.indrelid = to_regclass($1) AND a.attname = 'partition')";

    /// <summary>The index the census and the reads need, as the start-up warning prints it.</summary>
    public string CreatePartitionIndex =>
        $"CREATE INDEX CONCURRENTLY IF NOT EXISTS {QuoteIdentifier(OutboxTable.Split('.')[^1].Trim('"') + "_partition_id_idx")} ON {OutboxTable} (partition, id)";

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
/// Advisory-lock keys for the two-int form <c>pg_advisory_xact_lock(key1, key2)</c>: key1 identifies the
/// consumer, key2 is the partition index. Unlike Centrifugo's <c>hashtext('centrifugo_partition_lock_' || name || i)</c>
/// (where consumer "pg1" partition 0 and consumer "pg" partition 10 collide), two consumers can only share locks if
/// their key1 values are equal, which the host checks at start-up. Note: the two-int key space is separate from
/// Centrifugo's one-bigint keys, so this consumer does not exclude a Centrifugo node reading the same table.
/// </summary>
internal static class OutboxLockKey
{
    /// <summary>First 4 bytes (big-endian) of SHA-256("centrifugo-actors:" + consumer name). Stable across versions and platforms.</summary>
    public static int For(string consumerName)
    {
        ArgumentNullException.ThrowIfNull(consumerName);
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("centrifugo-actors:" + consumerName), hash);
        return BinaryPrimitives.ReadInt32BigEndian(hash);
    }
}
