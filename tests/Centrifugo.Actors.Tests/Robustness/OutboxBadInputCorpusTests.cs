using System.Text;
using System.Text.Json;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Npgsql;
using NpgsqlTypes;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>
/// Bad-input corpus for the outbox source, in an outbox that also carries an application column
/// (<c>tenant text NOT NULL</c>, no default): every bad row is followed by a good command in the same partition.
/// The good ones must all arrive in order, each bad one is delivered or dead-lettered (every column kept, with a
/// reason, logged with consumer, partition and id), and the outbox ends empty.
/// </summary>
public sealed class OutboxBadInputCorpusTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>, IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    /// <summary>A bad row; <paramref name="MustDeadLetter"/> false = Centrifugo may accept it.</summary>
    private sealed record Bad(string Name, string? Method, byte[] Payload, bool MustDeadLetter = true);

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    private static IEnumerable<Bad> Corpus()
    {
        yield return new("surrogate in method", "", U("""{"method":"pub\udc00lish","payload":{"channel":"corpus:x"}}"""));
        yield return new("surrogate in a key", "", U("""{"meth\ud800od":1,"method":"publish","payload":{"channel":"corpus:x"}}"""));
        yield return new("surrogate in a JSON-string payload", "", U("""{"method":"publish","payload":"{\"channel\":\"\ud800\"}"}"""));
        yield return new("surrogate in an object payload", "",
            U("""{"method":"publish","payload":{"channel":"corpus:s","data":{"t":"\ud800"}}}"""), MustDeadLetter: false);
        yield return new("surrogate in a method-column request", "publish", U("""{"channel":"corpus:h","data":{"t":"\udc00"}}"""),
            MustDeadLetter: false);
        yield return new(
            "invalid UTF-8 in method", "", [.. """{"method":"pub"""u8, 0xFF, .. """lish","payload":{"channel":"corpus:x"}}"""u8]);
        yield return new("malformed JSON", "", U("{not json"));
        yield return new("truncated JSON", "", U("""{"method":"publish","payload":{"channel":"corpus:x","""));
        yield return new("empty envelope", "", []);
        yield return new("empty request", "publish", []);
        yield return new("JSON null", "publish", U("null"));
        yield return new("array", "publish", U("[]"));
        yield return new("string", "", U("\"str\""));
        yield return new("empty object", "", U("{}"));
        yield return new("method a number", "", U("""{"method":5,"payload":{}}"""));
        yield return new("method empty", "", U("""{"method":"","payload":{}}"""));
        yield return new("payload an array", "", U("""{"method":"publish","payload":[1]}"""));
        yield return new("payload null", "", U("""{"method":"publish","payload":null}"""));
        yield return new("payload missing", "", U("""{"method":"publish"}"""));
        yield return new("deep nesting", "", U("""{"method":"publish","payload":{"channel":"corpus:x","data":""" +
            new string('[', 20_000) + new string(']', 20_000) + "}}"));
        yield return new("huge malformed value", "",
            U("{\"method\":\"publish\",\"payload\":{\"channel\":\"corpus:x\",\"data\":\"" + new string('x', 400_000)));
        yield return new("unknown method", "explode", U("""{"channel":"corpus:x"}"""));
        yield return new("read-only method", "presence", U("""{"channel":"corpus:x"}"""));
        yield return new("batch as a method", "batch", U("""{"commands":[]}"""));
        yield return new("batch in the envelope", "", U("""{"method":"batch","payload":{"commands":[]}}"""));
        yield return new("wrong type in the request", "publish", U("""{"channel":5}"""));
        yield return new("unknown namespace", "publish", U("""{"channel":"unknown:x","data":{}}"""));
        yield return new("NULL method with a good envelope", null, U("""{"method":"publish","payload":{"channel":"corpus:n","data":{}}}"""),
            MustDeadLetter: false);
    }

    [Theory]
    [InlineData("bytea")]
    [InlineData("text")]
    [InlineData("json")]
    public async Task Every_bad_row_is_delivered_or_dead_lettered_and_the_good_one_behind_it_arrives(string payloadType)
    {
        var name = PostgresFixture.UniqueName("outbox");
        await using (var create = pg.DataSource.CreateCommand(
            $"CREATE TABLE {name} " +
            $"(id BIGSERIAL PRIMARY KEY, method text, payload {payloadType} NOT NULL, partition INTEGER NOT NULL, tenant text NOT NULL); " +
            $"CREATE INDEX ON {name} (partition, id)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        var bads = new Dictionary<long, Bad>();
        var refused = new List<string>();
        var good = 0;
        await InsertAsync(name, payloadType, "publish", U(Publish(good++)));
        foreach (var bad in Corpus())
        {
            try
            {
                bads[await InsertAsync(name, payloadType, bad.Method, bad.Payload)] = bad;
            }
            catch (Exception e) when (e is PostgresException or ArgumentException or DecoderFallbackException)
            {
                refused.Add(bad.Name); // the column type itself refuses it (e.g. invalid JSON in json, invalid UTF-8 in text)
                continue;
            }
            await InsertAsync(name, payloadType, "publish", U(Publish(good++)));
        }
        Assert.Contains("surrogate in method", bads.Values.Select(b => b.Name));

        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey,
            TestNode.Postgres("pg_corpus", pg.Instance.UrlDsn, name, partitions: 1)), output);

        await using var count = pg.DataSource.CreateCommand($"SELECT count(*) FROM {name}");
        await Poll.UntilAsync(async () => (long)(await count.ExecuteScalarAsync())! == 0, "outbox drained", TimeSpan.FromSeconds(60));
        Assert.Equal(Enumerable.Range(0, good).Select(i => (long)i), _standIn.ReceivedFor("corpus:good").Select(Seq));

        var dead = new Dictionary<long, (string Consumer, string Reason, int Partition, string Tenant)>();
        await using (var read = pg.DataSource.CreateCommand($"SELECT id, consumer, reason, partition, tenant FROM {name}_dead_letter"))
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                dead[reader.GetInt64(0)] = (reader.GetString(1), reader.GetString(2), reader.GetInt32(3), reader.GetString(4));
            }
        }

        foreach (var (id, bad) in bads)
        {
            if (bad.MustDeadLetter)
            {
                Assert.True(dead.ContainsKey(id), $"'{bad.Name}' (id {id}) is not in the dead-letter table ({payloadType})");
            }
        }
        // The warning is written just after the transaction that moved the row commits, so the drained outbox can
        // be seen a moment before the last line is logged.
        foreach (var id in dead.Keys)
        {
            await node.Logs.WaitForAsync(
                l => l.Contains("[2001]", StringComparison.Ordinal)
                    && l.Contains("Consumer=pg_corpus", StringComparison.Ordinal) && l.Contains($"RowId={id},", StringComparison.Ordinal),
                $"dead letter {id}");
        }
        Assert.All(dead, d =>
        {
            Assert.True(bads.ContainsKey(d.Key), $"good row {d.Key} dead-lettered: {d.Value.Reason}");
            Assert.Equal(("pg_corpus", 0, "acme"), (d.Value.Consumer, d.Value.Partition, d.Value.Tenant));
            Assert.False(string.IsNullOrWhiteSpace(d.Value.Reason));
        });
        Assert.Single(_standIn.ReceivedFor("corpus:n"));
        // No decoder exception escaped and no pass failed outside delivery.
        Assert.DoesNotContain(node.Logs.Lines, l =>
            l.Contains("[2005]", StringComparison.Ordinal) || l.Contains("[2004]", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("json")]
    [InlineData("text")]
    public async Task With_derived_idempotency_keys_a_request_the_key_scan_cannot_unescape_is_delivered_and_the_rows_behind_it_flow(
        string payloadType)
    {
        // A lone-surrogate escape in a property name: Centrifugo's Go decoder reads it as U+FFFD, so the request is valid
        // for Centrifugo, and that name is not idempotency_key, so the request gets the derived key.
        var name = PostgresFixture.UniqueName("outbox");
        await using (var create = pg.DataSource.CreateCommand(
            $"CREATE TABLE {name} " +
            $"(id BIGSERIAL PRIMARY KEY, method text, payload {payloadType} NOT NULL, partition INTEGER NOT NULL, tenant text NOT NULL)"))
        {
            await create.ExecuteNonQueryAsync();
        }

        await InsertAsync(name, payloadType, "publish", U(Publish(0)));
        var poison = await InsertAsync(name, payloadType, "publish", U("""{"channel":"corpus:p","data":{},"x\ud800":1}"""));
        await InsertAsync(name, payloadType, "publish", U(Publish(1)));

        var consumer = TestNode.Postgres("pg_poison", pg.Instance.UrlDsn, name, partitions: 1);
        consumer = consumer with { Postgresql = consumer.Postgresql with { DeriveIdempotencyKey = true } };
        await using var node = await TestNode.StartAsync(TestNode.Options(_standIn.Url, _standIn.ApiKey, consumer), output);

        await using var count = pg.DataSource.CreateCommand($"SELECT count(*) FROM {name}");
        await Poll.UntilAsync(async () => (long)(await count.ExecuteScalarAsync())! == 0, "outbox drained", TimeSpan.FromSeconds(30));
        var goods = _standIn.ReceivedFor("corpus:good");
        Assert.Equal([0L, 1L], goods.Select(Seq));
        var delivered = Assert.Single(_standIn.ReceivedFor("corpus:p"));
        Assert.Equal($"ca:pg_poison:0:{poison}", delivered.IdempotencyKey);
        Assert.InRange(delivered.Sequence, goods[0].Sequence + 1, goods[1].Sequence - 1);
        Assert.DoesNotContain(node.Logs.Lines, l =>
            l.Contains("[2006]", StringComparison.Ordinal) || l.Contains("[2005]", StringComparison.Ordinal));
    }

    private static string Publish(long seq) => JsonSerializer.Serialize(new { channel = "corpus:good", data = new { seq } });

    private static long Seq(ReceivedCommand c)
    {
        using var doc = JsonDocument.Parse(c.RequestJson);
        return doc.RootElement.GetProperty("data").GetProperty("seq").GetInt64();
    }

    private async Task<long> InsertAsync(string table, string payloadType, string? method, byte[] payload)
    {
        var value = payloadType == "bytea" ? "$2" : "$2::" + payloadType;
        await using var insert = pg.DataSource.CreateCommand(
            $"INSERT INTO {table} (method, payload, partition, tenant) VALUES ($1, {value}, 0, 'acme') RETURNING id");
        insert.Parameters.Add(new NpgsqlParameter { Value = (object?)method ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        if (payloadType == "bytea")
        {
            insert.Parameters.Add(new NpgsqlParameter<byte[]> { TypedValue = payload });
        }
        else
        {
            var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(payload);
            insert.Parameters.Add(new NpgsqlParameter<string> { TypedValue = text, NpgsqlDbType = NpgsqlDbType.Text });
        }
        return (long)(await insert.ExecuteScalarAsync())!;
    }
}
