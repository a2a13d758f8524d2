using System.Text;
using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Configuration;

namespace Centrifugo.Actors.Tests.Delivery;

/// <summary>derive_idempotency_key: the key, how it is added to a request, the option, and the stand-in honouring keys.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class IdempotencyKeyTests
{
    private static ApiCommand Command(string method, string json) => new(method, Encoding.UTF8.GetBytes(json));

    private static string Written(ApiCommand command)
    {
        var buffer = new byte[IdempotencyKeys.WrittenLength(command)];
        Assert.Equal(buffer.Length, IdempotencyKeys.Write(command, buffer));
        return Encoding.UTF8.GetString(buffer);
    }

    private static DecodeResult Attach(string method, string json) =>
        IdempotencyKeys.Attach(DecodeResult.Ok(Command(method, json)), () => "ca:k");

    [Fact]
    public void Keys_are_deterministic_short_and_name_their_source()
    {
        Assert.Equal("ca:pg_main:3:123456", IdempotencyKeys.ForOutbox("pg_main", 3, 123456));
        Assert.Equal(IdempotencyKeys.ForOutbox("pg_main", 3, 123456), IdempotencyKeys.ForOutbox("pg_main", 3, 123456));
        Assert.Equal("ca:kf_main:commands:0:42", IdempotencyKeys.ForKafka("kf_main", "commands", 0, 42));
        Assert.NotEqual(IdempotencyKeys.ForOutbox("pg", 10, 1), IdempotencyKeys.ForOutbox("pg1", 0, 1));
        Assert.NotEqual(IdempotencyKeys.ForKafka("kf", "t", 1, 5), IdempotencyKeys.ForKafka("kf", "t", 15, 5));
        Assert.Equal($"ca:pg:{int.MaxValue}:{long.MaxValue}", IdempotencyKeys.ForOutbox("pg", int.MaxValue, long.MaxValue));
    }

    [Fact]
    public void Long_sources_are_hashed_to_stay_within_the_limit()
    {
        var topic = new string('t', 249); // Kafka's longest topic name
        var key = IdempotencyKeys.ForKafka("kafka_consumer_with_a_long_name", topic, 1023, long.MaxValue);
        Assert.True(key.Length <= IdempotencyKeys.MaxLength, key);
        Assert.Matches("^ca:h[0-9a-f]{16}:1023:9223372036854775807$", key);
        Assert.Equal(key, IdempotencyKeys.ForKafka("kafka_consumer_with_a_long_name", topic, 1023, long.MaxValue));
        Assert.NotEqual(key, IdempotencyKeys.ForKafka("kafka_consumer_with_a_long_name", topic[1..] + "u", 1023, long.MaxValue));
        Assert.All(
            [IdempotencyKeys.ForOutbox(new string('c', 200), 99999, long.MaxValue), key], k => Assert.Matches("^[A-Za-z0-9_.:-]+$", k));
    }

    [Theory]
    [InlineData("""{"channel":"c","data":{}}""", """{"channel":"c","data":{},"idempotency_key":"ca:k"}""")]
    [InlineData("""{ "channel" : "c" , "data" : { "x" : "}" } }  """,
        """{ "channel" : "c" , "data" : { "x" : "}" } ,"idempotency_key":"ca:k"}""")]
    [InlineData("""{}""", """{"idempotency_key":"ca:k"}""")]
    [InlineData("""{ }""", """{ "idempotency_key":"ca:k"}""")]
    [InlineData("""{"channel":"c","data":1,"idempotency_key":""}""",
        """{"channel":"c","data":1,"idempotency_key":"","idempotency_key":"ca:k"}""")]
    [InlineData("""{"channel":"c","data":1,"idempotency_key":null}""",
        """{"channel":"c","data":1,"idempotency_key":null,"idempotency_key":"ca:k"}""")]
    public void A_derived_key_is_added_as_the_last_member_without_reserialising(string request, string expected)
    {
        var decoded = Attach(ApiMethods.Publish, request);
        Assert.Equal("ca:k", decoded.Command!.Value.DerivedIdempotencyKey);
        var written = Written(decoded.Command!.Value);
        Assert.Equal(expected, written);
        using var doc = JsonDocument.Parse(written);
        Assert.True(CommandDecoder.IsSingleObject(Encoding.UTF8.GetBytes(written), out _));
    }

    [Theory]
    [InlineData("""{"channel":"c","data":1,"idempotency_key":"mine"}""")]
    [InlineData("""{"channel":"c","data":1,"Idempotency_Key":"mine"}""")]                  // Go matches names case-insensitively
    [InlineData("""{"channel":"c","data":1,"idempotency_\u212Aey":"mine"}""")]             // ... folding the Kelvin sign too
    [InlineData("""{"channel":"c","data":1,"idempotency_key":"","idempotency_key":"mine"}""")] // the last duplicate wins
    [InlineData("""{"channel":"c","data":1,"idempotency_key":5}""")]                       // refused by Centrifugo: left alone
    public void A_command_with_its_own_key_is_left_untouched(string request)
    {
        var decoded = Attach(ApiMethods.Publish, request);
        Assert.Null(decoded.Command!.Value.DerivedIdempotencyKey);
        Assert.Equal(request, Written(decoded.Command!.Value));
    }

    [Fact]
    public void Publication_data_mode_keeps_the_key_header_and_derives_one_without_it()
    {
        var options = new PublicationDataModeOptions { Enabled = true };
        static List<KeyValuePair<string, byte[]>> Headers(params (string Key, string Value)[] headers) =>
            headers.Select(h => new KeyValuePair<string, byte[]>(h.Key, Encoding.UTF8.GetBytes(h.Value))).ToList();

        var withHeader = IdempotencyKeys.Attach(
            PublicationDecoder.Decode(
                "1"u8.ToArray(), Headers(("centrifugo-channels", "a,b"), ("centrifugo-idempotency-key", "k1")), options),
            () => "ca:derived");
        Assert.Null(withHeader.Command!.Value.DerivedIdempotencyKey);

        var without = IdempotencyKeys.Attach(
            PublicationDecoder.Decode("1"u8.ToArray(), Headers(("centrifugo-channels", "a")), options), () => "ca:derived");
        using var json = JsonDocument.Parse(Written(without.Command!.Value));
        Assert.Equal("ca:derived", json.RootElement.GetProperty("idempotency_key").GetString());
        Assert.Equal("a", json.RootElement.GetProperty("channel").GetString());
    }

    [Fact]
    public void Only_publish_and_broadcast_get_a_key()
    {
        Assert.NotNull(Attach(ApiMethods.Broadcast, """{"channels":["a","b"],"data":1}""").Command!.Value.DerivedIdempotencyKey);
        foreach (var method in new[]
            { ApiMethods.Subscribe, ApiMethods.Unsubscribe, ApiMethods.Disconnect, ApiMethods.Refresh, ApiMethods.HistoryRemove })
        {
            Assert.Null(Attach(method, """{"channel":"c","user":"u"}""").Command!.Value.DerivedIdempotencyKey);
        }

        var rejected = IdempotencyKeys.Attach(
            DecodeResult.Reject("bad"), () => throw new InvalidOperationException("not derived for a rejection"));
        Assert.Equal("bad", rejected.RejectReason);
    }

    [Theory]
    [InlineData("""{"channel":"c","data":{},"x\ud800":1}""")]
    [InlineData("""{"channel":"c","data":{},"idempotency_key\udc00":"own"}""")]
    public void A_name_that_cannot_be_unescaped_is_not_the_key_and_never_throws(string request)
    {
        // Go's decoder reads a lone surrogate (or invalid UTF-8) as U+FFFD, which folds to no ASCII letter: that name is
        // never idempotency_key, so the request has no key of its own.
        Assert.Equal("ca:k", Attach(ApiMethods.Publish, request).Command!.Value.DerivedIdempotencyKey);
        byte[] invalidUtf8 = [.. "{\"channel\":\"c\",\"data\":{},\"\\u0041"u8, 0xFF, .. "\":1}"u8];
        Assert.Equal(IdempotencyKeys.Existing.None, IdempotencyKeys.Inspect(invalidUtf8));
    }

    [Fact]
    public void The_option_is_read_for_both_consumer_kinds_with_env_overrides_and_type_checks()
    {
        Assert.False(Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg())).Postgresql.DeriveIdempotencyKey);
        Assert.False(Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka())).Kafka.DeriveIdempotencyKey);
        Assert.True(
            Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg(block: ""","derive_idempotency_key":true"""))).Postgresql.DeriveIdempotencyKey);
        Assert.True(Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka(block: ""","derive_idempotency_key":true"""))).Kafka.DeriveIdempotencyKey);
        Assert.True(Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg("pg_main")),
            ("CENTRIFUGO_CONSUMERS_PG_MAIN_POSTGRESQL_DERIVE_IDEMPOTENCY_KEY", "true")).Postgresql.DeriveIdempotencyKey);
        Assert.True(Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka("kf_main")),
            ("CENTRIFUGO_CONSUMERS_KF_MAIN_KAFKA_DERIVE_IDEMPOTENCY_KEY", "1")).Kafka.DeriveIdempotencyKey);
        Assert.Contains("derive_idempotency_key: expected a boolean, got a string",
            Cfg.Error(Cfg.Config(Cfg.Pg(block: ""","derive_idempotency_key":"yes" """))), StringComparison.Ordinal);
        Assert.Contains("CENTRIFUGO_CONSUMERS_KF_MAIN_KAFKA_DERIVE_IDEMPOTENCY_KEY",
            Cfg.Error(Cfg.Config(Cfg.Kafka("kf_main")), ("CENTRIFUGO_CONSUMERS_KF_MAIN_KAFKA_DERIVE_IDEMPOTENCY_KEY", "yes")),
            StringComparison.Ordinal);

        // check-config prints it, and the printed config loads back the same.
        var options = Cfg.Load(
            Cfg.Config(Cfg.Pg(block: ""","derive_idempotency_key":true"""), Cfg.Kafka(block: ""","derive_idempotency_key":true""")));
        var printed = RedactedConfigWriter.Write(options);
        Assert.Equal(2, printed.Split("\"derive_idempotency_key\": true").Length - 1);
    }

    [Fact]
    public void The_window_halves_on_failure_down_to_one_and_doubles_back_to_the_batch_size()
    {
        var window = new DeliveryWindow();
        Assert.Equal(int.MaxValue, window.Limit);
        window.Succeeded(100);
        Assert.Equal(int.MaxValue, window.Limit);
        window.Failed(100);
        Assert.Equal(50, window.Limit);
        window.Failed(50);
        window.Failed(25);
        Assert.Equal(12, window.Limit);
        window.Failed(3); // a short request that failed: half of what it carried
        Assert.Equal(1, window.Limit);
        window.Failed(1);
        Assert.Equal(1, window.Limit);
        var seen = new List<int>();
        for (var i = 0; i < 8; i++)
        {
            window.Succeeded(100);
            seen.Add(window.Limit);
        }

        Assert.Equal([2, 4, 8, 16, 32, 64, 100, 100], seen);
    }
}

/// <summary>The stand-in drops repeats of an idempotency key per channel, like Centrifugo, and counts what reached subscribers.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class StandInIdempotencyTests : IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    [Fact]
    public async Task A_repeated_key_is_answered_alike_and_not_published_again_on_that_channel()
    {
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Add("X-API-Key", _standIn.ApiKey);
        async Task<string> Post(string path, string body)
        {
            using var response = await http.PostAsync(_standIn.Url + path, new StringContent(body, Encoding.UTF8, "application/json"));
            return await response.Content.ReadAsStringAsync();
        }

        var first = await Post("/publish", """{"channel":"a","data":1,"idempotency_key":"k1"}""");
        var again = await Post("/publish", """{"channel":"a","data":2,"Idempotency_Key":"k1"}""");
        Assert.Equal(first, again);
        await Post("/publish", """{"channel":"b","data":1,"idempotency_key":"k1"}""");   // another channel: published
        await Post("/publish", """{"channel":"a","data":1,"idempotency_key":""}""");     // no key: published
        await Post("/publish", """{"channel":"a","data":1}""");
        // A broadcast with a key seen on "a" reaches only "c"; a batch repeat of it reaches nobody.
        await Post("/broadcast", """{"channels":["a","c"],"data":1,"idempotency_key":"k1"}""");
        await Post("/batch", """{"commands":[{"broadcast":{"channels":["a","c"],"data":1,"idempotency_key":"k1"}},""" +
            """{"publish":{"channel":"d","data":1,"idempotency_key":"k1"}}]}""");

        Assert.Equal(8, _standIn.ReceivedCount);
        Assert.Equal(8, _standIn.CommandsReceived);
        Assert.Equal(6, _standIn.Publications);          // a, b, a (empty key), a (no key), c of the broadcast, d
        Assert.Equal(4, _standIn.SuppressedPublications); // a again, a of the broadcast, both channels of its repeat
        Assert.Equal([1, 1, 1, 1, 1, 1, 2], _standIn.RequestSizes);
        var received = _standIn.Received;
        Assert.Equal([1, 0, 1, 1, 1, 1, 0, 1], received.Select(c => c.Published));
        Assert.True(received[1].Suppressed);
        Assert.Equal("k1", received[1].IdempotencyKey);
    }

    [Fact]
    public async Task After_a_temporary_failure_requests_shrink_then_grow_back()
    {
        using var client = new CentrifugoClient(
            new ApiOptions { Url = _standIn.Url, Key = _standIn.ApiKey, MaxBatchSize = 16, Timeout = TimeSpan.FromSeconds(5) },
            new CapturingLoggerProvider().CreateLogger<CentrifugoClient>());
        var commands = Enumerable.Range(0, 64)
            .Select(i => new ApiCommand(ApiMethods.Publish, Encoding.UTF8.GetBytes($$"""{"channel":"w","data":{{i}}}""")))
            .ToList();
        var window = new DeliveryWindow();
        _standIn.FailNext(1, errorCode: 100, skip: 5);
        var first = await client.DeliverAsync(commands, CancellationToken.None, window: window);
        Assert.Equal(5, first.Completed.Count);
        Assert.Equal(8, window.Limit);
        Assert.Null((await client.DeliverAsync(commands.Skip(5).ToList(), CancellationToken.None, window: window)).Failure);
        // 16 (fails at #5; #6..#15 applied anyway), then from #5: 8, 16, 16, 16, 3.
        Assert.Equal([16, 8, 16, 16, 16, 3], _standIn.RequestSizes);
        Assert.Equal(16, window.Limit);
    }

    [Fact]
    public async Task A_key_is_forgotten_after_the_retention_window()
    {
        // Long enough that the first two requests fall inside it on a loaded machine (200 ms did not at load 30).
        await using var standIn = await CentrifugoStandIn.StartNewAsync(
            new StandInOptions { IdempotentResultTtl = TimeSpan.FromSeconds(2) });
        using var client = new CentrifugoClient(
            new ApiOptions { Url = standIn.Url, Key = standIn.ApiKey, MaxBatchSize = 10, Timeout = TimeSpan.FromSeconds(5) },
            new CapturingLoggerProvider().CreateLogger<CentrifugoClient>());
        var command = new ApiCommand(ApiMethods.Publish, """{"channel":"a","data":1}"""u8.ToArray()) { DerivedIdempotencyKey = "ca:x:0:1" };
        Assert.Null((await client.DeliverAsync([command], CancellationToken.None)).Failure);
        Assert.Null((await client.DeliverAsync([command], CancellationToken.None)).Failure);
        Assert.Equal(1, standIn.Publications);
        await Poll.UntilAsync(async () =>
        {
            Assert.Null((await client.DeliverAsync([command], CancellationToken.None)).Failure);
            return standIn.Publications == 2;
        }, "published again once the key expired", TimeSpan.FromSeconds(20));
        Assert.Equal("ca:x:0:1", standIn.Received[0].IdempotencyKey);
    }
}
