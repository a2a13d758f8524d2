using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Delivery;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class CentrifugoClientTests : IAsyncLifetime
{
    private const string Secret = "s3cr3t-key-that-must-not-leak";
    private CentrifugoStandIn _standIn = null!;
    private readonly CapturingLoggerProvider _logs = new();

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { ApiKey = Secret });

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private CentrifugoClient Client(int maxBatchSize = 100, TimeSpan? timeout = null, string? url = null, string? key = null) =>
        new(new ApiOptions
        {
            Url = url ?? _standIn.Url,
            Key = key ?? Secret,
            MaxBatchSize = maxBatchSize,
            Timeout = timeout ?? TimeSpan.FromSeconds(5),
        }, _logs.CreateLogger<CentrifugoClient>());

    private static ApiCommand Publish(string channel, int i) =>
        new(ApiMethods.Publish, Encoding.UTF8.GetBytes(
            "{\"channel\":\"" + channel + "\",\"data\":{\"i\":" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}}"));

    private static List<ApiCommand> Publishes(int count, string channel = "c") =>
        Enumerable.Range(0, count).Select(i => Publish(channel, i)).ToList();

    private static int IndexOf(ReceivedCommand command) =>
        int.Parse(command.RequestJson.Split("\"i\":")[1].TrimEnd('}'), System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    public async Task A_fence_that_closes_as_the_body_is_written_sends_nothing_and_is_a_temporary_failure(int maxBatchSize)
    {
        // The fence is asked before each request and again as its body is written (a pause between the two).
        using var client = Client(maxBatchSize);
        var asked = 0;
        var commands = Publishes(maxBatchSize, "fenced");

        var result = await client.DeliverAsync(commands, CancellationToken.None, () => ++asked == 1);

        Assert.Equal(FailureKind.Temporary, result.Failure?.Kind);
        Assert.Empty(result.Completed);
        Assert.Equal(2, asked);
        Assert.Empty(_standIn.ReceivedFor("fenced"));
        // The connection is usable again for the next, unfenced delivery.
        Assert.Null((await client.DeliverAsync(commands, CancellationToken.None, () => true)).Failure);
        Assert.Equal(maxBatchSize, _standIn.ReceivedFor("fenced").Count);
    }

    [Fact]
    public async Task Commands_are_sent_in_chunks_of_max_batch_size_in_order()
    {
        using var client = Client(maxBatchSize: 10);
        var result = await client.DeliverAsync(Publishes(21), CancellationToken.None);

        Assert.Null(result.Failure);
        Assert.Equal(21, result.Completed.Count);
        Assert.All(result.Completed, o => Assert.True(o.Delivered));
        Assert.Equal(Enumerable.Range(0, 21), _standIn.Received.Select(IndexOf));
        Assert.Equal(3, _standIn.RequestsWithStatus(200)); // 10 + 10 through /batch, the last one through /publish
    }

    // Centrifugo keeps executing a parallel:false batch after a failed command, so the commands after it in the
    // same chunk are applied once before the retry and once again with it: at least once, and not in order for them.
    [Fact]
    public async Task Error_100_stops_at_the_accepted_prefix_and_the_rest_is_delivered_on_retry()
    {
        using var client = Client(maxBatchSize: 4);
        var commands = Publishes(10);
        _standIn.FailNext(1, 100, skip: 6);

        var first = await client.DeliverAsync(commands, CancellationToken.None);
        Assert.Equal(FailureKind.Temporary, first.Failure!.Kind);
        Assert.Contains("centrifugo error 100", first.Failure.Message);
        Assert.Equal(6, first.Completed.Count);

        var retry = await client.DeliverAsync(commands.Skip(first.Completed.Count).ToList(), CancellationToken.None);
        Assert.Null(retry.Failure);
        Assert.Equal(4, retry.Completed.Count);
        Assert.Equal([0, 1, 2, 3, 4, 5, 7, 6, 7, 8, 9], _standIn.Received.Select(IndexOf));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    public async Task A_per_channel_100_in_a_broadcast_retries_the_whole_broadcast(int maxBatchSize)
    {
        using var client = Client(maxBatchSize);
        var broadcast = new ApiCommand(ApiMethods.Broadcast, Encoding.UTF8.GetBytes("""{"channels":["x","y"],"data":{}}"""));
        _standIn.FailNextBroadcastChannel(1);

        var first = await client.DeliverAsync([Publish("c", 0), broadcast], CancellationToken.None);
        Assert.Single(first.Completed);
        Assert.Equal(FailureKind.Temporary, first.Failure!.Kind);
        Assert.Contains("broadcast channel #0", first.Failure.Message);

        var retry = await client.DeliverAsync([broadcast], CancellationToken.None);
        Assert.Null(retry.Failure);
        Assert.True(retry.Completed[0].Delivered);
        Assert.Single(_standIn.ReceivedFor("y"));
    }

    [Fact]
    public async Task Other_error_codes_reject_the_command_and_delivery_continues()
    {
        using var client = Client();
        var result = await client.DeliverAsync([Publish("a", 0), Publish("unknown:b", 1), Publish("c", 2)], CancellationToken.None);

        Assert.Null(result.Failure);
        Assert.Equal([true, false, true], result.Completed.Select(o => o.Delivered));
        Assert.Equal(102, result.Completed[1].ErrorCode);
        Assert.Equal("centrifugo error 102: unknown channel", result.Completed[1].Reason);
    }

    [Fact]
    public async Task A_single_command_rejection_carries_the_code()
    {
        using var client = Client();
        var result = await client.DeliverAsync([new ApiCommand(ApiMethods.Disconnect, "{}"u8.ToArray())], CancellationToken.None);
        Assert.Equal(CommandOutcome.Rejected(107, "centrifugo error 107: bad request"), result.Completed.Single());
    }

    [Fact]
    public async Task A_batch_refused_with_400_is_resent_one_by_one_so_only_the_bad_command_is_rejected()
    {
        using var client = Client();
        var commands = Publishes(5);
        commands[2] = new ApiCommand(ApiMethods.Publish, """{"channel":"c","data":{},"version":"7"}"""u8.ToArray());

        var result = await client.DeliverAsync(commands, CancellationToken.None);

        Assert.Null(result.Failure);
        Assert.Equal([true, true, false, true, true], result.Completed.Select(o => o.Delivered));
        Assert.Null(result.Completed[2].ErrorCode);
        Assert.Equal("400 Bad Request: request JSON does not match method publish", result.Completed[2].Reason);
        Assert.Equal([0, 1, 3, 4], _standIn.Received.Select(IndexOf));
        Assert.Equal(2, _standIn.RequestsWithStatus(400)); // the batch, then the bad command alone
        Assert.Contains(_logs.Lines, l => l.Contains("[3001]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Isolation_stops_at_the_first_command_that_does_not_complete()
    {
        using var client = Client();
        var commands = Publishes(4);
        commands[0] = new ApiCommand(ApiMethods.Publish, """{"channel":1}"""u8.ToArray());
        // The batch 400 executes nothing; the bad command's own 400 is a decode failure, not an executed command.
        _standIn.FailNext(1, 100);

        var result = await client.DeliverAsync(commands, CancellationToken.None);

        Assert.Equal(FailureKind.Temporary, result.Failure!.Kind);
        Assert.Single(result.Completed);
        Assert.False(result.Completed[0].Delivered);
    }

    [Fact]
    public async Task Wrong_key_is_a_configuration_failure()
    {
        using var client = Client(key: "wrong");
        var result = await client.DeliverAsync(Publishes(3), CancellationToken.None);
        Assert.Empty(result.Completed);
        Assert.Equal(FailureKind.Configuration, result.Failure!.Kind);
        Assert.Equal($"401 Unauthorized from {_standIn.Url}/batch: api.key is wrong", result.Failure.Message);
    }

    [Fact]
    public async Task Wrong_path_is_a_configuration_failure()
    {
        using var client = Client(url: $"http://127.0.0.1:{_standIn.Port}/centrifugo");
        var result = await client.DeliverAsync(Publishes(1), CancellationToken.None);
        Assert.Equal(FailureKind.Configuration, result.Failure!.Kind);
        Assert.StartsWith("404 Not Found from", result.Failure.Message);
    }

    [Fact]
    public async Task Status_405_is_a_configuration_failure()
    {
        using var client = Client();
        _standIn.FailNextRequests(1, 405);
        var result = await client.DeliverAsync(Publishes(2), CancellationToken.None);
        Assert.Equal(FailureKind.Configuration, result.Failure!.Kind);
        Assert.StartsWith("405 Method Not Allowed", result.Failure.Message);
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(429)]
    public async Task Server_errors_are_temporary(int status)
    {
        using var client = Client();
        _standIn.FailNextRequests(1, status);
        var result = await client.DeliverAsync(Publishes(3), CancellationToken.None);
        Assert.Empty(result.Completed);
        Assert.Equal(FailureKind.Temporary, result.Failure!.Kind);
        Assert.StartsWith(status.ToString(System.Globalization.CultureInfo.InvariantCulture), result.Failure.Message);
        Assert.Null((await client.DeliverAsync(Publishes(3), CancellationToken.None)).Failure);
    }

    [Fact]
    public async Task A_dropped_connection_is_temporary()
    {
        using var client = Client();
        _standIn.DropNextConnections(1);
        var result = await client.DeliverAsync(Publishes(3), CancellationToken.None);
        Assert.Equal(FailureKind.Temporary, result.Failure!.Kind);
        Assert.Equal(1, _standIn.DroppedConnections);
        Assert.Null((await client.DeliverAsync(Publishes(3), CancellationToken.None)).Failure);
    }

    [Fact]
    public async Task A_timeout_is_temporary()
    {
        using var client = Client(timeout: TimeSpan.FromMilliseconds(100));
        _standIn.Latency = TimeSpan.FromSeconds(2);
        var result = await client.DeliverAsync(Publishes(2), CancellationToken.None);
        Assert.Equal(FailureKind.Temporary, result.Failure!.Kind);
        Assert.StartsWith("timeout after 100 ms calling", result.Failure.Message);
    }

    [Fact]
    public async Task Caller_cancellation_throws()
    {
        using var client = Client();
        _standIn.Latency = TimeSpan.FromSeconds(2);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.DeliverAsync(Publishes(2), cts.Token));
    }

    [Fact]
    public async Task An_outage_is_temporary_and_delivery_resumes_after_it()
    {
        using var client = Client();
        Assert.Null((await client.DeliverAsync(Publishes(2), CancellationToken.None)).Failure); // warm pooled connection
        await _standIn.StopAsync();

        var during = await client.DeliverAsync(Publishes(2), CancellationToken.None);
        Assert.Equal(FailureKind.Temporary, during.Failure!.Kind);
        Assert.StartsWith("cannot reach", during.Failure.Message);

        await _standIn.StartAsync();
        Assert.Null((await client.DeliverAsync(Publishes(2), CancellationToken.None)).Failure);
        Assert.Equal(4, _standIn.ReceivedCount);
    }

    [Fact]
    public async Task The_api_key_never_appears_in_results_or_logs()
    {
        var messages = new List<string>();
        async Task Run(CentrifugoClient client, IReadOnlyList<ApiCommand> commands)
        {
            var result = await client.DeliverAsync(commands, CancellationToken.None);
            messages.AddRange(result.Completed.Select(o => o.Reason ?? ""));
            messages.Add(result.Failure?.Message ?? "");
        }

        // The key also sits in the URL's userinfo here: it must not surface through the endpoint either.
        var leakyUrl = $"http://user:{Secret}@127.0.0.1:{_standIn.Port}/api";
        using (var wrongKey = Client(key: Secret + "x", url: leakyUrl))
        {
            await Run(wrongKey, Publishes(2));
        }

        using var client = Client();
        var bad = Publishes(3);
        bad[1] = new ApiCommand(ApiMethods.Publish, """{"channel":true}"""u8.ToArray());
        await Run(client, bad);
        await Run(client, [Publish("unknown:x", 0)]);
        _standIn.FailNextRequests(1, 500);
        await Run(client, Publishes(2));
        _standIn.DropNextConnections(1);
        await Run(client, Publishes(2));
        await _standIn.StopAsync();
        await Run(client, Publishes(2));

        Assert.NotEmpty(_logs.Lines);
        Assert.All(messages.Concat(_logs.Lines), m => Assert.DoesNotContain(Secret, m, StringComparison.Ordinal));
    }
}
