using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Centrifugo.Actors.Testing.StandIn;

namespace Centrifugo.Actors.Tests.Delivery;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class StandInTests : IAsyncLifetime
{
    private CentrifugoStandIn _standIn = null!;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync() => _standIn = await CentrifugoStandIn.StartNewAsync();

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _standIn.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, string Body, string? ContentType)> PostAsync(
        string path, string body, Action<HttpRequestHeaders>? headers = null, bool withKey = true)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _standIn.Url + path) { Content = new StringContent(body) };
        if (withKey)
        {
            request.Headers.Add("X-API-Key", _standIn.ApiKey);
        }

        headers?.Invoke(request.Headers);
        using var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Content.Headers.ContentType?.MediaType);
    }

    private static JsonElement Json(string body) => JsonDocument.Parse(body).RootElement;

    [Fact]
    public async Task Non_post_requests_get_405_with_an_empty_body()
    {
        using var response = await _http.GetAsync(_standIn.Url + "/publish");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("/nope")]
    [InlineData("/publish/")]
    [InlineData("/map_publish")]
    [InlineData("")]
    public async Task Unknown_paths_get_404(string path)
    {
        var (status, _, _) = await PostAsync(path, "{}");
        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task Auth_follows_centrifugo_header_order_and_query_fallback()
    {
        var key = _standIn.ApiKey;
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync("/info", "{}", withKey: false)).Status);
        Assert.Equal(HttpStatusCode.OK,
            (await PostAsync("/info", "{}", h => h.TryAddWithoutValidation("Authorization", "ApiKey " + key), withKey: false)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized,
            (await PostAsync("/info", "{}", h => h.TryAddWithoutValidation("Authorization", "Bearer " + key), withKey: false)).Status);
        // A non-empty X-API-Key decides alone: no fallback to Authorization...
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync("/info", "{}", h =>
        {
            h.Add("X-API-Key", "wrong");
            h.TryAddWithoutValidation("Authorization", "apikey " + key);
        }, withKey: false)).Status);
        // ...but the query string still gets a chance.
        Assert.Equal(HttpStatusCode.OK,
            (await PostAsync("/info?api_key=" + key, "{}", h => h.Add("X-API-Key", "wrong"), withKey: false)).Status);
        var (status, body, _) = await PostAsync("/info?api_key=nope", "{}", withKey: false);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Empty(body);
    }

    [Theory]
    [InlineData("publish", """{"channel":5}""")]
    [InlineData("publish", """{"channel":"c","data":{},"version":-1}""")]
    [InlineData("publish", """{"channel":"c","data":{},"version":1.5}""")]
    [InlineData("publish", """{"channel":"c","data":{},"tags":{"a":1}}""")]
    [InlineData("broadcast", """{"channels":"c"}""")]
    [InlineData("subscribe", """{"channel":"c","override":{"presence":{"value":"yes"}}}""")]
    [InlineData("disconnect", """{"user":"u","disconnect":{"code":-3}}""")]
    [InlineData("publish", """[]""")]
    [InlineData("publish", """{"channel":"c"} x""")]
    [InlineData("publish", "")]
    public async Task Requests_that_go_would_not_decode_get_400_plain_text(string method, string body)
    {
        var (status, text, contentType) = await PostAsync("/" + method, body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("Bad Request\n", text);
        Assert.Equal("text/plain", contentType);
    }

    [Fact]
    public async Task Unknown_fields_are_ignored_and_field_names_match_case_insensitively()
    {
        var (status, body, _) = await PostAsync("/publish", """{"Channel":"c","DATA":{"x":1},"whatever":[{"deep":true}]}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"result":{}}""", body);
        var received = Assert.Single(_standIn.Received);
        Assert.Equal("publish", received.Method);
        Assert.Equal(["c"], received.Channels);
    }

    [Theory]
    [InlineData("publish", """{"data":{}}""")]
    [InlineData("publish", """{"channel":"c"}""")]
    [InlineData("publish", """{"channel":"c","b64data":"@@@"}""")]
    [InlineData("broadcast", """{"channels":[],"data":{}}""")]
    [InlineData("subscribe", """{"user":"u"}""")]
    [InlineData("unsubscribe", """{"channel":"c"}""")]
    [InlineData("disconnect", """{}""")]
    [InlineData("refresh", """null""")]
    [InlineData("history_remove", """{}""")]
    public async Task Missing_required_fields_get_error_107(string method, string body)
    {
        var (status, text, _) = await PostAsync("/" + method, body);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("""{"error":{"code":107,"message":"bad request"}}""", text);
        Assert.Equal(0, _standIn.ReceivedCount);
        Assert.Equal(1, _standIn.RejectedCount);
    }

    [Fact]
    public async Task Unknown_namespace_gets_error_102_and_broadcast_reports_per_channel_errors()
    {
        var (_, publish, _) = await PostAsync("/publish", """{"channel":"unknown:x","data":{}}""");
        Assert.Equal("""{"error":{"code":102,"message":"unknown channel"}}""", publish);

        var (_, broadcast, _) = await PostAsync("/broadcast", """{"channels":["a","","unknown:z","ns:b"],"data":1}""");
        var responses = Json(broadcast).GetProperty("result").GetProperty("responses").EnumerateArray().ToList();
        Assert.Equal(4, responses.Count);
        Assert.True(responses[0].TryGetProperty("result", out _));
        Assert.Equal(107, responses[1].GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(102, responses[2].GetProperty("error").GetProperty("code").GetInt32());
        Assert.True(responses[3].TryGetProperty("result", out _));
    }

    [Fact]
    public async Task Known_namespaces_option_restricts_namespaces_but_never_the_default_one()
    {
        await using var strict = await CentrifugoStandIn.StartNewAsync(
            new StandInOptions { KnownNamespaces = new HashSet<string> { "chat" } });
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Add("X-API-Key", strict.ApiKey);
        async Task<string> Publish(string channel) =>
            await (await http.PostAsync(
                strict.Url + "/publish", new StringContent("{\"channel\":\"" + channel + "\",\"data\":{}}"))).Content.ReadAsStringAsync();

        Assert.Equal("""{"result":{}}""", await Publish("chat:1"));
        Assert.Equal("""{"result":{}}""", await Publish("plain"));
        Assert.Contains("102", await Publish("news:1"));
    }

    [Fact]
    public async Task Batch_replies_are_positionally_aligned_with_the_commands()
    {
        var body = """
            {"commands":[
              {"publish":{"channel":"a","data":{"i":1}}},
              {"publish":{"channel":"unknown:b","data":{}}},
              null,
              {},
              {"subscribe":{"channel":"c","user":"u"},"publish":{"channel":"first-wins","data":{}}},
              {"presence":{"channel":"p"}}
            ],"parallel":false}
            """;
        var (status, text, _) = await PostAsync("/batch", body);
        Assert.Equal(HttpStatusCode.OK, status);
        var replies = Json(text).GetProperty("replies").EnumerateArray().ToList();
        Assert.Equal(6, replies.Count);
        Assert.True(replies[0].TryGetProperty("publish", out _));
        Assert.Equal(102, replies[1].GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(107, replies[2].GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(104, replies[3].GetProperty("error").GetProperty("code").GetInt32());
        Assert.True(replies[4].TryGetProperty("publish", out _), "publish comes first in Go's dispatch order");
        Assert.True(replies[5].GetProperty("presence").TryGetProperty("presence", out _));

        Assert.Equal(["publish", "publish", "presence"], _standIn.Received.Select(r => r.Method));
        Assert.Equal("""{"channel":"a","data":{"i":1}}""", _standIn.Received[0].RequestJson);
        Assert.Equal([1L, 2L, 3L], _standIn.Received.Select(r => r.Sequence));
        Assert.Single(_standIn.ReceivedFor("first-wins"));
    }

    [Fact]
    public async Task A_batch_with_one_undecodable_command_is_refused_as_a_whole()
    {
        var (status, text, _) = await PostAsync("/batch",
            """{"commands":[{"publish":{"channel":"a","data":{}}},{"publish":{"channel":["x"]}}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("Bad Request\n", text);
        Assert.Equal(0, _standIn.ReceivedCount);
    }

    [Fact]
    public async Task Fail_next_counts_commands_inside_batches_and_honours_skip()
    {
        _standIn.FailNext(2, 100, skip: 1);
        var commands = string.Join(",", Enumerable.Range(0, 4).Select(i => "{\"publish\":{\"channel\":\"c" + i + "\",\"data\":{}}}"));
        var (_, text, _) = await PostAsync("/batch", $$"""{"commands":[{{commands}}]}""");
        var replies = Json(text).GetProperty("replies").EnumerateArray().ToList();
        Assert.True(replies[0].TryGetProperty("publish", out _));
        Assert.Equal(100, replies[1].GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal(100, replies[2].GetProperty("error").GetProperty("code").GetInt32());
        Assert.True(replies[3].TryGetProperty("publish", out _));
    }

    [Fact]
    public async Task Injected_status_and_counters_are_reported()
    {
        _standIn.FailNextRequests(1, 503);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await PostAsync("/info", "{}")).Status);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync("/info", "{}")).Status);
        Assert.Equal(1, _standIn.RequestsWithStatus(503));
        Assert.Equal(1, _standIn.RequestsWithStatus(200));
    }

    [Fact]
    public async Task Wait_for_received_times_out_with_a_clear_message()
    {
        var error = await Assert.ThrowsAsync<TimeoutException>(() => _standIn.WaitForReceivedAsync(1, TimeSpan.FromMilliseconds(50)));
        Assert.Contains("accepted 0 commands, expected 1", error.Message);
    }

    [Fact]
    public async Task Stop_refuses_connections_and_start_reopens_the_same_port()
    {
        var port = _standIn.Port;
        await _standIn.StopAsync();
        await Assert.ThrowsAsync<HttpRequestException>(() => PostAsync("/info", "{}"));
        await _standIn.StartAsync();
        Assert.Equal(port, _standIn.Port);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync("/info", "{}")).Status);
    }

    [Fact]
    public async Task Counters_only_mode_records_nothing_but_counts()
    {
        await using var fast = await CentrifugoStandIn.StartNewAsync(new StandInOptions { RecordCommands = false, ApiKey = "k" });
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Add("X-API-Key", "k");
        using var response = await http.PostAsync(fast.Url + "/publish", new StringContent("""{"channel":"c","data":{}}""", Encoding.UTF8));
        await fast.WaitForReceivedAsync(1, TimeSpan.FromSeconds(5));
        Assert.Empty(fast.Received);
        Assert.Equal(1, fast.ReceivedCount);
    }
}
