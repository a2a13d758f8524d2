using System.Text;
using Centrifugo.Actors.Delivery;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Tests.Robustness;

/// <summary>Inputs System.Text.Json reads but cannot unescape (lone surrogates, invalid UTF-8): rejected, never thrown.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class DecoderBadInputTests
{
    [Theory]
    [InlineData("""{"method":"pub\udc00lish","payload":{"channel":"c"}}""")]
    [InlineData("""{"method":"\ud800","payload":{}}""")]
    [InlineData("""{"meth\ud800od":1,"method":"publish","payload":{"channel":"c"}}""")]
    [InlineData("""{"x\udc00":1,"method":"publish","payload":{"channel":"c"}}""")]
    [InlineData("""{"method":"publish","payload":"{\"channel\":\"\ud800\"}"}""")]
    [InlineData("""{"method":"publish","payload":"\ud800"}""")]
    [InlineData("""{"method":"publish","pay\udfffload":{"channel":"c"}}""")]
    public void Lone_surrogate_escapes_in_the_envelope_are_malformed_not_thrown(string envelope)
    {
        var result = CommandDecoder.Decode("", Encoding.UTF8.GetBytes(envelope));
        Assert.Null(result.Command);
        Assert.StartsWith("malformed envelope", result.RejectReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_in_the_envelope_method_is_malformed_not_thrown()
    {
        byte[] body = [.. """{"method":"pub"""u8, 0xFF, .. """lish","payload":{}}"""u8];
        var result = CommandDecoder.Decode(null, body);
        Assert.Null(result.Command);
        Assert.StartsWith("malformed envelope", result.RejectReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_in_an_escaped_property_name_is_malformed_not_thrown()
    {
        byte[] body = [.. "{\"a\\n"u8, 0xC3, .. "\":1,\"method\":\"publish\",\"payload\":{}}"u8];
        var result = CommandDecoder.Decode("", body);
        Assert.Null(result.Command);
        Assert.NotNull(result.RejectReason);
    }

    [Fact]
    public void A_lone_surrogate_inside_an_object_payload_is_passed_through_verbatim_for_centrifugo_to_judge()
    {
        // Centrifugo's Go decoder replaces it with U+FFFD; the bytes are forwarded as they are.
        var body = """{"method":"publish","payload":{"channel":"c","data":{"t":"\ud800"}}}""";
        var result = CommandDecoder.Decode("", Encoding.UTF8.GetBytes(body));
        Assert.NotNull(result.Command);
        Assert.Equal("""{"channel":"c","data":{"t":"\ud800"}}""", Encoding.UTF8.GetString(result.Command!.Value.Request.Span));
    }

    [Fact]
    public void The_decode_step_turns_an_exception_in_decoding_or_key_derivation_into_a_rejection()
    {
        var body = Encoding.UTF8.GetBytes("""{"channel":"c","data":{}}""");
        var keyed = DecodeStep.Run(body, static b => CommandDecoder.Decode("publish", b), static _ => "ca:k", out var none);
        Assert.Null(none);
        Assert.Equal("ca:k", keyed.Command!.Value.DerivedIdempotencyKey);

        var keyFailed = DecodeStep.Run(body, static b => CommandDecoder.Decode("publish", b),
            static _ => throw new InvalidOperationException("no key"), out var keyFailure);
        Assert.IsType<InvalidOperationException>(keyFailure);
        Assert.Null(keyFailed.Command);
        Assert.Equal("cannot derive the idempotency key: InvalidOperationException: no key", keyFailed.RejectReason);

        var decodeFailed = DecodeStep.Run(body, static DecodeResult (_) => throw new FormatException("bug"), null, out var decodeFailure);
        Assert.IsType<FormatException>(decodeFailure);
        Assert.Equal("cannot decode: FormatException: bug", decodeFailed.RejectReason);
    }

    [Fact]
    public void Nesting_deeper_than_go_accepts_is_malformed()
    {
        var deep = """{"method":"publish","payload":{"channel":"c","data":""" + new string('[', 20_000) + new string(']', 20_000) + "}}";
        var result = CommandDecoder.Decode("", Encoding.UTF8.GetBytes(deep));
        Assert.Null(result.Command);
        Assert.Contains("invalid JSON", result.RejectReason, StringComparison.Ordinal);
    }
}
