using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Tests.Delivery;

/// <summary>Golden reply bodies, byte for byte as Centrifugo v6 writes them, and what each one means for delivery.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class CentrifugoReplyParserTests
{
    private const string Endpoint = "http://centrifugo:8000/api/batch";

    private static ApiCommand[] Commands(params string[] methods) =>
        methods.Select(m => new ApiCommand(m, ReadOnlyMemory<byte>.Empty)).ToArray();

    private static Classification[] Batch(ReadOnlySpan<byte> body, ApiCommand[] commands, out Classification? unexpected) =>
        CentrifugoReplyParser.Batch(body, commands, 0, commands.Length, Endpoint, out unexpected);

    [Fact]
    public void A_result_is_delivered()
    {
        var reply = CentrifugoReplyParser.Single("""{"result":{"offset":7,"epoch":"xyz"}}"""u8, ApiMethods.Publish, Endpoint);

        Assert.Equal(new Classification(DeliveryDecision.Delivered, null, ""), reply);
    }

    [Fact]
    public void An_empty_result_is_delivered() =>
        Assert.Equal(DeliveryDecision.Delivered,
            CentrifugoReplyParser.Single("""{"result":{}}"""u8, ApiMethods.Subscribe, Endpoint).Decision);

    [Fact]
    public void An_error_code_other_than_100_rejects_the_command_with_centrifugos_message()
    {
        var reply = CentrifugoReplyParser.Single("""{"error":{"code":102,"message":"unknown channel"}}"""u8, ApiMethods.Publish, Endpoint);

        Assert.Equal(new Classification(DeliveryDecision.Rejected, 102, "centrifugo error 102: unknown channel"), reply);
    }

    [Fact]
    public void Error_100_is_retried()
    {
        var reply = CentrifugoReplyParser.Single(
            """{"error":{"code":100,"message":"internal server error"}}"""u8, ApiMethods.Publish, Endpoint);

        Assert.Equal(new Classification(DeliveryDecision.Retry, 100, "centrifugo error 100: internal server error"), reply);
    }

    [Fact]
    public void A_message_that_is_not_valid_text_is_replaced_not_thrown()
    {
        var reply = CentrifugoReplyParser.Single("""{"error":{"code":103,"message":"\ud800"}}"""u8, ApiMethods.Publish, Endpoint);

        Assert.Equal(new Classification(DeliveryDecision.Rejected, 103, "centrifugo error 103: (message not valid UTF-8/UTF-16)"), reply);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"status":"ok"}""")]
    public void A_200_without_result_or_error_is_not_centrifugo_and_stalls(string body)
    {
        var reply = CentrifugoReplyParser.Single(System.Text.Encoding.UTF8.GetBytes(body), ApiMethods.Publish, Endpoint);

        Assert.Equal(DeliveryDecision.Stall, reply.Decision);
        Assert.Contains("api.url does not point at Centrifugo's server API", reply.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("<html>gateway</html>", "invalid JSON")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("""{"result":{}""", "invalid JSON")]
    public void A_body_that_is_no_reply_is_retried(string body, string what)
    {
        var reply = CentrifugoReplyParser.Single(System.Text.Encoding.UTF8.GetBytes(body), ApiMethods.Publish, Endpoint);

        Assert.Equal(DeliveryDecision.Retry, reply.Decision);
        Assert.StartsWith($"unexpected response from {Endpoint}: {what}", reply.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_broadcast_with_a_channel_failing_with_100_is_retried_whole()
    {
        var reply = CentrifugoReplyParser.Single(
            """{"result":{"responses":[{"result":{"offset":1}},{"error":{"code":100,"message":"internal server error"}}]}}"""u8,
            ApiMethods.Broadcast, Endpoint);

        Assert.Equal(
            new Classification(DeliveryDecision.Retry, 100, "broadcast channel #1: centrifugo error 100: internal server error"), reply);
    }

    [Fact]
    public void A_broadcast_partly_refused_for_good_is_delivered_and_says_which_channels()
    {
        var reply = CentrifugoReplyParser.Single(
            """{"result":{"responses":[{"error":{"code":102,"message":"unknown channel"}},{"result":{}},"""u8 +
            """{"error":{"code":107,"message":"bad request"}}]}}"""u8,
            ApiMethods.Broadcast, Endpoint);

        Assert.Equal(new Classification(DeliveryDecision.Delivered, null,
            "broadcast partly refused: channel #0: centrifugo error 102: unknown channel; channel #2: centrifugo error 107: bad request"),
            reply);
    }

    [Fact]
    public void A_batch_of_mixed_replies_is_read_one_per_command_in_order()
    {
        var commands = Commands(
            ApiMethods.Publish, ApiMethods.Publish, ApiMethods.Subscribe, ApiMethods.Broadcast, ApiMethods.HistoryRemove);

        var replies = Batch(
            """{"replies":[{"publish":{"offset":5,"epoch":"e"}},{"error":{"code":102,"message":"unknown channel"}},{"subscribe":{}},"""u8 +
            """{"broadcast":{"responses":[{"result":{}},{"error":{"code":100,"message":"internal server error"}}]}},"""u8 +
            """{"error":{"code":100,"message":"internal server error"}}]}"""u8,
            commands, out var unexpected);

        Assert.Null(unexpected);
        Assert.Equal(
            [DeliveryDecision.Delivered, DeliveryDecision.Rejected, DeliveryDecision.Delivered,
                DeliveryDecision.Retry, DeliveryDecision.Retry],
            replies.Select(r => r.Decision));
        Assert.Equal(102, replies[1].Code);
        Assert.Equal("broadcast channel #1: centrifugo error 100: internal server error", replies[3].Message);
    }

    [Fact]
    public void A_batch_reply_is_read_for_the_commands_from_the_chunks_start()
    {
        var commands = Commands(ApiMethods.Publish, ApiMethods.Publish, ApiMethods.Broadcast, ApiMethods.Refresh);

        var replies = CentrifugoReplyParser.Batch(
            """{"replies":[{"broadcast":{"responses":[{"error":{"code":102,"message":"unknown channel"}}]}},{"refresh":{}}]}"""u8,
            commands, 2, 2, Endpoint, out var unexpected);

        Assert.Null(unexpected);
        Assert.Equal(new Classification(DeliveryDecision.Delivered, null,
            "broadcast partly refused: channel #0: centrifugo error 102: unknown channel"), replies[0]);
        Assert.Equal(DeliveryDecision.Delivered, replies[1].Decision);
    }

    [Fact]
    public void Unknown_fields_around_the_replies_are_skipped()
    {
        var replies = Batch(
            """{"took":{"ms":1},"replies":[{"publish":{}}],"extra":[1,{"a":2}]}"""u8, Commands(ApiMethods.Publish), out var unexpected);

        Assert.Null(unexpected);
        Assert.Equal(DeliveryDecision.Delivered, Assert.Single(replies).Decision);
    }

    [Theory]
    [InlineData("""{"replies":[{"publish":{}}]}""", "1 replies for 2 commands")]
    [InlineData("""{"replies":[{"publish":{}},{"publish":{}},{"publish":{}}]}""", "replies do not match the 2 commands sent")]
    [InlineData("""{"replies":[{"publish":{}},42]}""", "replies do not match the 2 commands sent")]
    [InlineData("""{"replies":{"publish":{}}}""", "\"replies\" is not an array")]
    [InlineData("""{}""", "0 replies for 2 commands")]
    [InlineData("""[]""", "not a JSON object")]
    [InlineData("""{"replies":[{"publish":{}},""", "invalid JSON")]
    public void A_batch_reply_that_does_not_match_the_commands_sent_is_unexpected_and_retried(string body, string what)
    {
        Batch(System.Text.Encoding.UTF8.GetBytes(body), Commands(ApiMethods.Publish, ApiMethods.Publish), out var unexpected);

        Assert.NotNull(unexpected);
        Assert.Equal(DeliveryDecision.Retry, unexpected.Value.Decision);
        Assert.StartsWith($"unexpected response from {Endpoint}: {what}", unexpected.Value.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_transport_error_mode_body_is_classified_by_its_code()
    {
        Assert.Equal(new Classification(DeliveryDecision.Rejected, 102, "centrifugo error 102: unknown channel"),
            CentrifugoReplyParser.TransportError("""{"code":102,"message":"unknown channel"}"""u8, 404));
        Assert.Equal(DeliveryDecision.Retry, CentrifugoReplyParser.TransportError("""{"code":100}"""u8, 500)?.Decision);
        Assert.Equal(DeliveryDecision.Rejected,
            CentrifugoReplyParser.TransportError("""{"code":107,"message":"bad request"}"""u8, 400)?.Decision);
        Assert.Equal(DeliveryDecision.Rejected,
            CentrifugoReplyParser.TransportError("""{"code":112,"message":"unrecoverable position"}"""u8, 416)?.Decision);
        Assert.Equal(DeliveryDecision.Rejected,
            CentrifugoReplyParser.TransportError("""{"code":113,"message":"conflict"}"""u8, 409)?.Decision);
        // Codes without a mapping of their own come with a 500 (MapErrorToHTTPCode's default).
        Assert.Equal(DeliveryDecision.Rejected,
            CentrifugoReplyParser.TransportError("""{"code":103,"message":"permission denied"}"""u8, 500)?.Decision);
    }

    [Theory]
    [InlineData("")]
    [InlineData("<html>502 Bad Gateway</html>")]
    [InlineData("""{"code":102,"message":"unknown channel","details":"proxy"}""")]
    [InlineData("""{"message":"no code"}""")]
    [InlineData("""{"code":"102"}""")]
    public void Any_other_non_200_body_is_not_a_transport_error(string body) =>
        Assert.Null(CentrifugoReplyParser.TransportError(System.Text.Encoding.UTF8.GetBytes(body), 404));

    // A proxy or API gateway in front of Centrifugo answers its own errors in the same shape: only a code of
    // Centrifugo's range with the status Centrifugo gives that code is Centrifugo's answer; anything else is the status's.
    [Theory]
    [InlineData(500, """{"code":500,"message":"Internal Server Error"}""")]
    [InlineData(404, """{"code":404,"message":"not found"}""")]
    [InlineData(400, """{"code":400,"message":"bad request"}""")]
    [InlineData(409, """{"code":409,"message":"conflict"}""")]
    [InlineData(500, """{"code":0,"message":"upstream"}""")]
    [InlineData(500, """{"code":199000,"message":"upstream"}""")]
    [InlineData(500, """{"code":102,"message":"unknown channel"}""")]
    [InlineData(404, """{"code":100,"message":"internal server error"}""")]
    [InlineData(400, """{"code":102,"message":"unknown channel"}""")]
    [InlineData(404, """{"code":107,"message":"bad request"}""")]
    [InlineData(416, """{"code":113,"message":"conflict"}""")]
    [InlineData(409, """{"code":112,"message":"unrecoverable position"}""")]
    public void A_gateway_error_body_is_not_a_transport_error(int status, string body) =>
        Assert.Null(CentrifugoReplyParser.TransportError(System.Text.Encoding.UTF8.GetBytes(body), status));
}
