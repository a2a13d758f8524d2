using System.Net;
using System.Net.Sockets;
using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Testing.Postgres;
using Centrifugo.Actors.Testing.StandIn;
using Centrifugo.Actors.Tests.Node;
using Xunit.Abstractions;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>
/// Something that answers every HTTP request with one fixed response over real TCP (a proxy, a gateway, a wrong
/// api.url). Bounded: it stops accepting when disposed.
/// </summary>
internal sealed class FixedHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly byte[] _response;
    private int _requests;

    public FixedHttpServer(int status, string contentType, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        _response = Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {status} X\r\nContent-Type: {contentType}\r\nContent-Length: {bytes.Length}\r\n\r\n").Concat(bytes).ToArray();
        _listener.Start();
        _loop = Task.Run(AcceptAsync);
    }

    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/api";

    public int Requests => Volatile.Read(ref _requests);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var buffer = new byte[64 * 1024];
            var pending = new List<byte>();
            try
            {
                while (!_stop.IsCancellationRequested)
                {
                    var n = await stream.ReadAsync(buffer, _stop.Token);
                    if (n == 0)
                    {
                        return;
                    }
                    pending.AddRange(buffer.AsSpan(0, n));
                    // One request = headers + Content-Length body.
                    while (TryTakeRequest(pending))
                    {
                        Interlocked.Increment(ref _requests);
                        await stream.WriteAsync(_response, _stop.Token);
                    }
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
            {
            }
        }
    }

    private static bool TryTakeRequest(List<byte> pending)
    {
        var text = Encoding.ASCII.GetString(pending.ToArray());
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0)
        {
            return false;
        }
        var length = 0;
        foreach (var line in text[..end].Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            {
                length = int.Parse(line["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        if (pending.Count < end + 4 + length)
        {
            return false;
        }
        pending.RemoveRange(0, end + 4 + length);
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _loop;
        _stop.Dispose();
    }
}

/// <summary>Centrifugo settings and endpoints that are not Centrifugo: classified by what they mean, never stalled on data.</summary>
public sealed class DeliveryRobustnessTests(PostgresFixture pg, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{
    private static CentrifugoClient Client(string url, string key, int maxBatchSize = 100) =>
        new(new ApiOptions { Url = url, Key = key, MaxBatchSize = maxBatchSize, Timeout = TimeSpan.FromSeconds(5) },
            new CapturingLoggerProvider().CreateLogger<CentrifugoClient>());

    private static ApiCommand Publish(string channel, int i = 0) =>
        new(ApiMethods.Publish, Encoding.UTF8.GetBytes($"{{\"channel\":\"{channel}\",\"data\":{{\"i\":{i}}}}}"));

    [Fact]
    public async Task Transport_error_mode_data_errors_are_rejected_by_their_code_and_error_100_is_retried()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { TransportErrorMode = true });
        using var client = Client(standIn.Url, standIn.ApiKey);

        // One command: POST /publish; Centrifugo answers 404 {"code":102,…} in transport mode.
        var unknown = await client.DeliverAsync([Publish("unknown:x")], CancellationToken.None);
        Assert.Null(unknown.Failure);
        var outcome = Assert.Single(unknown.Completed);
        Assert.False(outcome.Delivered);
        Assert.Equal(102, outcome.ErrorCode);
        Assert.Equal(1, standIn.RequestsWithStatus(404));

        standIn.FailNext(1, 100);
        var internalError = await client.DeliverAsync([Publish("ok")], CancellationToken.None);
        Assert.Equal(FailureKind.Temporary, internalError.Failure!.Kind);
        Assert.Equal(1, standIn.RequestsWithStatus(500));

        standIn.FailNext(1, 113);
        var conflict = await client.DeliverAsync([Publish("ok")], CancellationToken.None);
        Assert.Null(conflict.Failure);
        Assert.Equal(113, Assert.Single(conflict.Completed).ErrorCode);

        // Isolation after a /batch 400 sends singles: their transport-mode errors are classified by code too.
        var batch = await client.DeliverAsync(
            [Publish("ok", 1), new ApiCommand(ApiMethods.Publish, """{"channel":7}"""u8.ToArray()), Publish("unknown:y"), Publish("ok", 2)],
            CancellationToken.None);
        Assert.Null(batch.Failure);
        Assert.Equal([true, false, false, true], batch.Completed.Select(c => c.Delivered));
        Assert.Equal(102, batch.Completed[2].ErrorCode);
    }

    [Fact]
    public async Task Transport_error_mode_unknown_namespace_row_is_dead_lettered_and_the_partition_goes_on()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync(new StandInOptions { TransportErrorMode = true });
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync([new OutboxInsert("publish", """{"channel":"unknown:x","data":{}}""", 0)]);
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_transport", pg.Instance.UrlDsn, name, partitions: 1)), output);

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "row dead-lettered", TimeSpan.FromSeconds(30));
        Assert.Contains("102", Assert.Single(await table.ReadDeadLettersAsync()).Reason, StringComparison.Ordinal);
        await table.InsertOneAsync(new OutboxInsert("publish", """{"channel":"ok","data":{}}""", 0));
        await standIn.WaitForReceivedAsync(1, TimeSpan.FromSeconds(30));
        Assert.Empty(node.Board.Stalled());
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"status\":\"ok\"}")]
    public async Task A_200_reply_without_result_is_never_counted_as_delivered(string body)
    {
        await using var gateway = new FixedHttpServer(200, "application/json", body);
        using var client = Client(gateway.Url, "k");

        var result = await client.DeliverAsync([Publish("c")], CancellationToken.None);

        Assert.Empty(result.Completed);
        Assert.Equal(FailureKind.Configuration, result.Failure!.Kind);
        Assert.Contains("without \"result\"", result.Failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(400)]
    [InlineData(413)]
    public async Task Something_answering_400_or_413_to_everything_is_a_configuration_fault_not_poison(int status)
    {
        await using var proxy = new FixedHttpServer(status, "text/html", "<html><body>rejected</body></html>");
        using var client = Client(proxy.Url, "k");

        var commands = Enumerable.Range(0, 50).Select(i => Publish("c", i)).ToList();
        var result = await client.DeliverAsync(commands, CancellationToken.None);

        // At most the limit is rejected (dead-lettered) before the client calls it a configuration fault.
        Assert.Equal(CentrifugoClient.StatusOnlyRejectionLimit, result.Completed.Count);
        Assert.All(result.Completed, c => Assert.False(c.Delivered));
        Assert.Equal(FailureKind.Configuration, result.Failure!.Kind);
        Assert.Contains("something other than Centrifugo", result.Failure.Message, StringComparison.Ordinal);

        // Still a configuration fault on the next attempt: nothing more is dead-lettered.
        var again = await client.DeliverAsync(commands.Skip(10).ToList(), CancellationToken.None);
        Assert.Empty(again.Completed);
        Assert.Equal(FailureKind.Configuration, again.Failure!.Kind);
    }

    [Theory]
    [InlineData(400, """{"code":107,"message":"bad request"}""")]
    [InlineData(409, """{"code":113,"message":"conflict"}""")]
    public async Task Something_answering_a_centrifugo_like_error_body_to_everything_is_a_configuration_fault_not_poison(
        int status, string body)
    {
        // A body a proxy could send that reads exactly like Centrifugo's transport error mode: the streak guard still
        // stops the dead-lettering after the limit.
        await using var proxy = new FixedHttpServer(status, "application/json", body);
        using var client = Client(proxy.Url, "k", maxBatchSize: 1);

        var result = await client.DeliverAsync(Enumerable.Range(0, 50).Select(i => Publish("c", i)).ToList(), CancellationToken.None);

        Assert.Equal(CentrifugoClient.StatusOnlyRejectionLimit, result.Completed.Count);
        Assert.All(result.Completed, c => Assert.False(c.Delivered));
        Assert.Equal(FailureKind.Configuration, result.Failure!.Kind);
        Assert.Contains("something other than Centrifugo", result.Failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_gateway_answering_500_with_its_own_error_body_is_retried_and_every_row_is_delivered_in_order_after_it_recovers()
    {
        // 7 failed requests: the partition's window halves down to single commands (40, 20, 10, 5, 2, then 1), so the
        // last ones go through POST /publish, whose non-200 body is read.
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        standIn.FailNextRequests(7, 500, """{"code":500,"message":"Internal Server Error"}""");
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(
            Enumerable.Range(0, 40).Select(i => new OutboxInsert("publish", $"{{\"channel\":\"gw\",\"data\":{{\"i\":{i}}}}}", 0)));
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_gateway500", pg.Instance.UrlDsn, name, partitions: 1)), output);

        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "outbox drained", TimeSpan.FromSeconds(60));
        Assert.Equal(7, standIn.RequestsWithStatus(500));
        Assert.Empty(await table.ReadDeadLettersAsync());
        Assert.Equal(Enumerable.Range(0, 40), standIn.ReceivedFor("gw")
            .Select(c => int.Parse(c.RequestJson.Split("\"i\":")[1].TrimEnd('}'), System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task A_gateway_answering_404_with_its_own_error_body_stalls_the_partition_and_dead_letters_nothing()
    {
        // One row: the command goes alone through POST /publish, whose non-200 body is read.
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        standIn.FailNextRequests(int.MaxValue, 404, """{"code":404,"message":"not found"}""");
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync([new OutboxInsert("publish", """{"channel":"gw","data":{}}""", 0)]);
        await using var node = await TestNode.StartAsync(TestNode.Options(standIn.Url, standIn.ApiKey,
            TestNode.Postgres("pg_gateway404", pg.Instance.UrlDsn, name, partitions: 1)), output);

        await Poll.UntilAsync(() => node.Board.Stalled().Count == 1, "partition stalled", TimeSpan.FromSeconds(30));
        Assert.Contains(node.Logs.Lines, l =>
            l.Contains("[2003]", StringComparison.Ordinal) && l.Contains("404 Not Found", StringComparison.Ordinal));
        Assert.Equal(1, await table.CountAsync());
        Assert.Empty(await table.ReadDeadLettersAsync());

        standIn.FailNextRequests(0, 404);
        await standIn.WaitForReceivedAsync(1, TimeSpan.FromSeconds(30));
        await Poll.UntilAsync(async () => await table.CountAsync() == 0, "row delivered once the path answers", TimeSpan.FromSeconds(30));
        Assert.Empty(await table.ReadDeadLettersAsync());
    }

    [Fact]
    public async Task Status_only_rejections_interleaved_with_accepted_commands_stay_rejections()
    {
        await using var standIn = await CentrifugoStandIn.StartNewAsync();
        using var client = Client(standIn.Url, standIn.ApiKey, maxBatchSize: 1);
        for (var round = 0; round < 3; round++)
        {
            var commands = Enumerable.Range(0, 8).Select(_ => new ApiCommand(ApiMethods.Publish, """{"channel":5}"""u8.ToArray()))
                .Append(Publish("ok", round)).ToList();
            var result = await client.DeliverAsync(commands, CancellationToken.None);
            Assert.Null(result.Failure);
            Assert.Equal(8, result.Completed.Count(c => !c.Delivered));
        }
    }

    [Fact]
    public async Task A_proxy_rejecting_everything_stalls_the_outbox_partition_and_turns_readiness_red()
    {
        await using var proxy = new FixedHttpServer(400, "text/html", "<html>bad</html>");
        var name = PostgresFixture.UniqueName("outbox");
        var table = await OutboxTestTable.CreateAsync(pg.DataSource, name);
        await table.InsertAsync(
            Enumerable.Range(0, 40).Select(i => new OutboxInsert("publish", $"{{\"channel\":\"c\",\"data\":{{\"i\":{i}}}}}", 0)));
        await using var node = await TestNode.StartAsync(TestNode.Options(proxy.Url, "k",
            TestNode.Postgres("pg_proxy", pg.Instance.UrlDsn, name, partitions: 1)), output);

        await Poll.UntilAsync(() => node.Board.Stalled().Count == 1, "partition stalled", TimeSpan.FromSeconds(30));
        using var http = new HttpClient();
        var ready = await http.GetAsync(new Uri(node.AdminUrl + "/health/ready"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.InRange(await table.CountAsync(), 40 - CentrifugoClient.StatusOnlyRejectionLimit, 40);
        Assert.Contains(node.Logs.Lines, l =>
            l.Contains("[2003]", StringComparison.Ordinal) && l.Contains("something other than Centrifugo", StringComparison.Ordinal));
    }
}
