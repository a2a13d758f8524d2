using System.Text;
using System.Text.Json;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Delivery;

namespace Centrifugo.Actors.Tests.Delivery;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class CommandDecoderTests
{
    private static ReadOnlyMemory<byte> Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static string Text(ApiCommand command) => Encoding.UTF8.GetString(command.Request.Span);

    [Theory]
    [InlineData("publish")]
    [InlineData("broadcast")]
    [InlineData("subscribe")]
    [InlineData("unsubscribe")]
    [InlineData("disconnect")]
    [InlineData("history_remove")]
    [InlineData("refresh")]
    public void Out_of_band_method_passes_the_body_through_verbatim(string method)
    {
        var body = Utf8("""  {"channel":"a", "data":{"x":[1,2]}} """);
        var result = CommandDecoder.Decode(method, body);
        Assert.Null(result.RejectReason);
        Assert.Equal(method, result.Command!.Value.Method);
        Assert.True(result.Command!.Value.Request.Span == body.Span, "the request must point into the body, not be a copy");
    }

    [Theory]
    [InlineData("presence")]
    [InlineData("history")]
    [InlineData("batch")]
    [InlineData("Publish")]
    [InlineData("map_publish")]
    public void Unsupported_out_of_band_method_is_rejected_naming_it(string method)
    {
        var result = CommandDecoder.Decode(method, Utf8("{}"));
        Assert.Null(result.Command);
        Assert.Equal($"unsupported method \"{method}\" (read-only or unknown)", result.RejectReason);
    }

    [Theory]
    [InlineData("[1]", "an array")]
    [InlineData("\"s\"", "a string")]
    [InlineData("null", "null")]
    [InlineData("", "empty body")]
    [InlineData("{\"a\":1} {}", "invalid JSON")]
    [InlineData("{\"a\":", "invalid JSON")]
    public void Out_of_band_body_that_is_not_one_json_object_is_rejected(string body, string expected)
    {
        var result = CommandDecoder.Decode("publish", Utf8(body));
        Assert.Null(result.Command);
        Assert.Contains("not a JSON object", result.RejectReason);
        Assert.Contains(expected, result.RejectReason);
    }

    [Fact]
    public void Envelope_with_object_payload_yields_the_payload_slice()
    {
        var result = CommandDecoder.Decode(null, Utf8("""{"method":"publish","payload":{"channel":"c","data":{"k":"v"}}}"""));
        Assert.Equal("publish", result.Command!.Value.Method);
        Assert.Equal("""{"channel":"c","data":{"k":"v"}}""", Text(result.Command!.Value));
    }

    [Fact]
    public void Envelope_with_string_payload_is_unquoted_like_debezium_output()
    {
        var inner = """{"channel":"c","data":{"text":"é \"q\""}}""";
        var body = JsonSerializer.Serialize(new { method = "broadcast", payload = inner });
        var result = CommandDecoder.Decode("", Utf8(body));
        Assert.Equal("broadcast", result.Command!.Value.Method);
        Assert.Equal(inner, Text(result.Command!.Value));
    }

    [Fact]
    public void Envelope_field_names_match_case_insensitively_like_go()
    {
        var result = CommandDecoder.Decode(null, Utf8("""{"Method":"refresh","PAYLOAD":{"user":"u"},"extra":[1]}"""));
        Assert.Equal("refresh", result.Command!.Value.Method);
    }

    [Theory]
    [InlineData("""{"method":"presence","payload":{"channel":"c"}}""", "unsupported method \"presence\" (read-only or unknown)")]
    [InlineData("""{"method":"rpc","payload":{}}""", "unsupported method \"rpc\" (read-only or unknown)")]
    [InlineData("""{"payload":{}}""", "malformed envelope: \"method\" is missing or empty")]
    [InlineData("""{"method":"","payload":{}}""", "malformed envelope: \"method\" is missing or empty")]
    [InlineData("""{"method":5,"payload":{}}""", "malformed envelope: \"method\" must be a string, found a number")]
    [InlineData("""{"method":"publish"}""", "malformed envelope: \"payload\" is missing")]
    [InlineData("""{"method":"publish","payload":[1]}""",
        "malformed envelope: \"payload\" must be a JSON object or a string holding one, found an array")]
    [InlineData("""{"method":"publish","payload":null}""",
        "malformed envelope: \"payload\" must be a JSON object or a string holding one, found null")]
    [InlineData("""{"method":"publish","payload":"not json"}""", "malformed envelope: \"payload\" string does not hold a JSON object")]
    [InlineData("""{"method":"publish","payload":"[1]"}""", "malformed envelope: \"payload\" string does not hold a JSON object")]
    [InlineData("""[{"method":"publish"}]""", "malformed envelope: expected a JSON object")]
    [InlineData("""{"method":"publish","payload":{}""", "malformed envelope: invalid JSON")]
    [InlineData("", "malformed envelope: empty body")]
    public void Envelope_problems_are_rejected_with_a_reason(string body, string expectedPrefix)
    {
        var result = CommandDecoder.Decode(null, Utf8(body));
        Assert.Null(result.Command);
        Assert.StartsWith(expectedPrefix, result.RejectReason);
    }
}

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class PublicationDecoderTests
{
    private static readonly PublicationDataModeOptions Options = new() { Enabled = true };

    private static List<KeyValuePair<string, byte[]>> Headers(params (string Key, string Value)[] headers) =>
        headers.Select(h => KeyValuePair.Create(h.Key, Encoding.UTF8.GetBytes(h.Value))).ToList();

    private static JsonElement Request(DecodeResult result) =>
        JsonDocument.Parse(result.Command!.Value.Request).RootElement;

    [Fact]
    public void One_channel_becomes_a_publish_with_the_value_as_raw_data_and_all_metadata()
    {
        var result = PublicationDecoder.Decode(
            Encoding.UTF8.GetBytes("""{"n":1}"""),
            Headers(("centrifugo-channels", "news"), ("centrifugo-idempotency-key", "k1"), ("centrifugo-delta", "T"),
                ("centrifugo-version", "42"), ("centrifugo-version-epoch", "e"), ("centrifugo-tag-a", "1"),
                ("centrifugo-tag-b", "2"), ("other", "x")),
            Options);

        Assert.Equal("publish", result.Command!.Value.Method);
        var json = Request(result);
        Assert.Equal("news", json.GetProperty("channel").GetString());
        Assert.Equal(1, json.GetProperty("data").GetProperty("n").GetInt32());
        Assert.Equal("k1", json.GetProperty("idempotency_key").GetString());
        Assert.True(json.GetProperty("delta").GetBoolean());
        Assert.Equal(42UL, json.GetProperty("version").GetUInt64());
        Assert.Equal("e", json.GetProperty("version_epoch").GetString());
        Assert.Equal("1", json.GetProperty("tags").GetProperty("a").GetString());
        Assert.Equal("2", json.GetProperty("tags").GetProperty("b").GetString());
        Assert.Equal(2, json.GetProperty("tags").EnumerateObject().Count());
    }

    [Fact]
    public void Several_channels_become_a_broadcast_split_on_commas_without_trimming()
    {
        var result = PublicationDecoder.Decode(Encoding.UTF8.GetBytes("1"), Headers(("centrifugo-channels", "a, b,,c")), Options);
        Assert.Equal("broadcast", result.Command!.Value.Method);
        var json = Request(result);
        Assert.Equal(["a", " b", "", "c"], json.GetProperty("channels").EnumerateArray().Select(e => e.GetString()!));
        Assert.False(json.TryGetProperty("delta", out _));
        Assert.False(json.TryGetProperty("version", out _));
        Assert.False(json.TryGetProperty("tags", out _));
    }

    [Fact]
    public void Header_lookup_is_exact_and_first_match_wins()
    {
        var result = PublicationDecoder.Decode(Encoding.UTF8.GetBytes("{}"),
            Headers(("Centrifugo-Channels", "wrong"), ("centrifugo-channels", "first"), ("centrifugo-channels", "second")), Options);
        Assert.Equal("first", Request(result).GetProperty("channel").GetString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Missing_or_empty_channels_header_is_rejected(string? channels)
    {
        var headers = channels is null ? Headers() : Headers(("centrifugo-channels", channels));
        var result = PublicationDecoder.Decode(Encoding.UTF8.GetBytes("{}"), headers, Options);
        Assert.StartsWith("no channels", result.RejectReason);
    }

    [Theory]
    [InlineData("yes")]
    [InlineData("tRUE")]
    [InlineData(" true")]
    public void Delta_that_go_parsebool_refuses_is_rejected(string delta)
    {
        var result = PublicationDecoder.Decode(Encoding.UTF8.GetBytes("{}"),
            Headers(("centrifugo-channels", "c"), ("centrifugo-delta", delta)), Options);
        Assert.Contains("centrifugo-delta", result.RejectReason);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData("1.0")]
    [InlineData("18446744073709551616")]
    public void Version_that_is_not_a_uint64_is_rejected(string version)
    {
        var result = PublicationDecoder.Decode(Encoding.UTF8.GetBytes("{}"),
            Headers(("centrifugo-channels", "c"), ("centrifugo-version", version)), Options);
        Assert.Contains("centrifugo-version", result.RejectReason);
    }

    [Fact]
    public void Value_that_is_not_json_is_sent_as_b64data_so_centrifugo_gets_the_same_bytes()
    {
        var result = PublicationDecoder.Decode(new byte[] { 0xff, 0x00, 0x41 }, Headers(("centrifugo-channels", "bin:c")), Options);
        var json = Request(result);
        Assert.False(json.TryGetProperty("data", out _));
        Assert.Equal(new byte[] { 0xff, 0x00, 0x41 }, Convert.FromBase64String(json.GetProperty("b64data").GetString()!));
    }

    [Fact]
    public void Empty_value_omits_data_and_lets_centrifugo_decide()
    {
        var result = PublicationDecoder.Decode(ReadOnlyMemory<byte>.Empty, Headers(("centrifugo-channels", "c")), Options);
        var json = Request(result);
        Assert.False(json.TryGetProperty("data", out _));
        Assert.False(json.TryGetProperty("b64data", out _));
    }

    [Fact]
    public void Custom_header_names_are_honoured()
    {
        var options = new PublicationDataModeOptions { Enabled = true, ChannelsHeader = "ch", TagsHeaderPrefix = "t-" };
        var result = PublicationDecoder.Decode(Encoding.UTF8.GetBytes("{}"), Headers(("ch", "x"), ("t-k", "v")), options);
        var json = Request(result);
        Assert.Equal("x", json.GetProperty("channel").GetString());
        Assert.Equal("v", json.GetProperty("tags").GetProperty("k").GetString());
    }
}
