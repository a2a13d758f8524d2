using System.Text;
using System.Text.Json;
using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Tests.Delivery;

/// <summary>
/// The <c>/batch</c> body is written straight from the commands' raw request bytes (no re-serialisation): golden
/// bytes for representative commands decoded the ways the Kafka path decodes them, and the method matched on bytes.
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class CentrifugoClientBatchBodyTests
{
    private static ReadOnlyMemory<byte> Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static string Body(params ApiCommand[] commands)
    {
        var (buffer, length) = CentrifugoClient.BuildBatchBody(commands, 0, commands.Length);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }

    [Fact]
    public void The_batch_body_embeds_each_request_byte_for_byte_unicode_and_escapes_included()
    {
        // Envelope with an object payload: its bytes as they are in the record (whitespace, escapes, raw UTF-8).
        var envelope = CommandDecoder.Decode(null,
            Utf8("""{"method":"publish","payload":{"channel":"ch","data":{"t":"héllo \"q\" \u2603 ☃ \\ \/"}} }""")).Command!.Value;
        // Method header: the value is the request verbatim.
        var header = CommandDecoder.DecodeWithMethodHeader(
            "broadcast"u8, Utf8("""{"channels":["a","b"],"data":{"emoji":"😀","esc":"\ud83d\ude00"}}""")).Command!.Value;
        // A JSON-string payload (Debezium): unescaped once, then embedded.
        var debezium = CommandDecoder.Decode(null, Utf8("""{"method":"disconnect","payload":"{\"user\":\"ü\\u00fc\"}"}""")).Command!.Value;
        // A derived idempotency key is added as the request's last member.
        var keyed = CommandDecoder.Decode("publish",
            Utf8("""{"channel":"k","data":{}}""")).Command!.Value with { DerivedIdempotencyKey = "ca:c:t:0:7" };

        var body = Body(envelope, header, debezium, keyed);

        Assert.Equal(
            """{"commands":[{"publish":{"channel":"ch","data":{"t":"héllo \"q\" \u2603 ☃ \\ \/"}}},""" +
            """{"broadcast":{"channels":["a","b"],"data":{"emoji":"😀","esc":"\ud83d\ude00"}}},""" +
            """{"disconnect":{"user":"ü\u00fc"}},""" +
            """{"publish":{"channel":"k","data":{},"idempotency_key":"ca:c:t:0:7"}}],"parallel":false}""",
            body);
        using var parsed = JsonDocument.Parse(body); // and it is one valid JSON document
        Assert.Equal("héllo \"q\" ☃ ☃ \\ /",
            parsed.RootElement.GetProperty("commands")[0].GetProperty("publish").GetProperty("data").GetProperty("t").GetString());
    }

    [Theory]
    [InlineData("publish")]
    [InlineData("broadcast")]
    [InlineData("subscribe")]
    [InlineData("unsubscribe")]
    [InlineData("disconnect")]
    [InlineData("history_remove")]
    [InlineData("refresh")]
    public void A_method_header_is_matched_on_its_bytes_to_the_same_method_constant(string method)
    {
        var body = Utf8("""{"channel":"a"}""");
        var result = CommandDecoder.DecodeWithMethodHeader(Encoding.UTF8.GetBytes(method), body);
        Assert.Same(CommandDecoder.Canonical(method), result.Command!.Value.Method);
        Assert.True(result.Command!.Value.Request.Span == body.Span, "the request must point into the value, not be a copy");
    }

    [Fact]
    public void A_method_header_that_is_empty_refused_or_not_utf8_behaves_as_its_text_did()
    {
        var envelope = Utf8("""{"method":"refresh","payload":{"user":"u"}}""");
        Assert.Equal("refresh", CommandDecoder.DecodeWithMethodHeader([], envelope).Command!.Value.Method);
        Assert.Equal("unsupported method \"Publish\" (read-only or unknown)",
            CommandDecoder.DecodeWithMethodHeader("Publish"u8, Utf8("{}")).RejectReason);
        Assert.Equal(CommandDecoder.Decode(Encoding.UTF8.GetString([0xff, 0x70]), Utf8("{}")).RejectReason,
            CommandDecoder.DecodeWithMethodHeader([0xff, 0x70], Utf8("{}")).RejectReason);
    }

    [Fact]
    public void An_envelope_method_is_matched_on_its_bytes_and_an_escaped_one_still_reads()
    {
        Assert.Same(ApiMethods.Publish, CommandDecoder.Decode(null, Utf8("""{"method":"publish","payload":{}}""")).Command!.Value.Method);
        Assert.Same(
            ApiMethods.Publish, CommandDecoder.Decode(null, Utf8("""{"method":"\u0070ublish","payload":{}}""")).Command!.Value.Method);
        Assert.Equal("unsupported method \"presence\" (read-only or unknown)",
            CommandDecoder.Decode(null, Utf8("""{"method":"presence","payload":{}}""")).RejectReason);
        Assert.Equal("malformed envelope: \"method\" is missing or empty",
            CommandDecoder.Decode(null, Utf8("""{"method":"","payload":{}}""")).RejectReason);
    }

    [Fact]
    public void Commands_are_split_across_bodies_by_size_and_one_larger_command_goes_alone()
    {
        // Sizes only (the bytes are not read): a body never holds more than 64 MiB of commands, but at least one.
        var large = new byte[40 << 20];
        var big = new ApiCommand(ApiMethods.Publish, large);
        var small = new ApiCommand(ApiMethods.Publish, Utf8("""{"channel":"c","data":1}"""));

        Assert.Equal(1, CentrifugoClient.WithinBodyLimit([big, big, small], 0, 3));
        Assert.Equal(2, CentrifugoClient.WithinBodyLimit([big, small, big], 0, 3));
        Assert.Equal(3, CentrifugoClient.WithinBodyLimit([small, small, small], 0, 3));
        Assert.Equal(1, CentrifugoClient.WithinBodyLimit([new ApiCommand(ApiMethods.Publish, new byte[70 << 20]), small], 0, 2));
    }
}
