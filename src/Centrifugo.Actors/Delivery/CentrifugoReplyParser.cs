using System.Collections.Frozen;
using System.Text;
using System.Text.Json;

namespace Centrifugo.Actors.Delivery;

/// <summary>
/// Reads Centrifugo's server-API reply bodies into <see cref="Classification"/>s: a single command's reply, a batch's
/// replies (one per command, in order; a broadcast's per-channel errors), and the transport error mode's non-200 body.
/// Pure and allocation-light (a <see cref="Utf8JsonReader"/> over the pooled body); error messages are read as text
/// and never echo the request. Golden bodies: tests/…/Delivery/CentrifugoReplyParserTests.cs.
/// </summary>
internal static class CentrifugoReplyParser
{
    // A batch reply names each command's result after its method: {"publish":{}}, {"broadcast":{"responses":[…]}}.
    private static readonly FrozenDictionary<string, byte[]> ResultNames = ApiMethods.Accepted
        .ToFrozenDictionary(m => m, m => Encoding.UTF8.GetBytes(m), StringComparer.Ordinal);

    /// <summary>The 200 reply to <c>POST /{method}</c>: <c>{"result":…}</c> or <c>{"error":{"code":N,"message":"…"}}</c>.</summary>
    public static Classification Single(ReadOnlySpan<byte> body, string method, string endpoint)
    {
        try
        {
            var reader = new Utf8JsonReader(body, CommandDecoder.ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return DeliveryClassifier.ForUnexpectedBody(endpoint, "not a JSON object");
            }

            return ParseReply(ref reader, "result"u8, method == ApiMethods.Broadcast, endpoint, requireResult: true);
        }
        catch (JsonException e)
        {
            return DeliveryClassifier.ForUnexpectedBody(endpoint, "invalid JSON: " + e.Message);
        }
    }

    /// <summary>
    /// The 200 reply to <c>POST /batch</c> of <paramref name="count"/> commands from <paramref name="start"/>:
    /// <c>{"replies":[{"publish":{…}},{"error":{…}},…]}</c>, one reply per command, in order. Sets
    /// <paramref name="unexpected"/> when the body is not such a reply (then the returned array means nothing).
    /// </summary>
    public static Classification[] Batch(
        ReadOnlySpan<byte> body, IReadOnlyList<ApiCommand> commands, int start, int count, string endpoint, out Classification? unexpected)
    {
        var replies = new Classification[count];
        unexpected = Batch(body, commands, start, count, endpoint, replies);
        return replies;
    }

    /// <summary>
    /// <see cref="Batch(ReadOnlySpan{byte}, IReadOnlyList{ApiCommand}, int, int, string, out Classification?)"/> into
    /// the caller's <paramref name="replies"/> (at least <paramref name="count"/> long, e.g. pooled); returns what it
    /// sets as unexpected.
    /// </summary>
    public static Classification? Batch(
        ReadOnlySpan<byte> body, IReadOnlyList<ApiCommand> commands, int start, int count, string endpoint, Span<Classification> replies)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(replies.Length, count);
        Classification? unexpected = null;
        try
        {
            var reader = new Utf8JsonReader(body, CommandDecoder.ReaderOptions);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                unexpected = DeliveryClassifier.ForUnexpectedBody(endpoint, "not a JSON object");
                return unexpected;
            }

            var seen = -1;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (!reader.ValueTextEquals("replies"u8))
                {
                    reader.Read();
                    reader.Skip();
                    continue;
                }

                reader.Read();
                if (reader.TokenType != JsonTokenType.StartArray)
                {
                    unexpected = DeliveryClassifier.ForUnexpectedBody(endpoint, "\"replies\" is not an array");
                    return unexpected;
                }

                seen = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (seen >= count || reader.TokenType != JsonTokenType.StartObject)
                    {
                        unexpected = DeliveryClassifier.ForUnexpectedBody(endpoint, $"replies do not match the {count} commands sent");
                        return unexpected;
                    }

                    var method = commands[start + seen].Method;
                    replies[seen] = ParseReply(ref reader, ResultName(method), method == ApiMethods.Broadcast, endpoint);
                    seen++;
                }
            }

            if (seen != count)
            {
                unexpected = DeliveryClassifier.ForUnexpectedBody(endpoint, $"{Math.Max(seen, 0)} replies for {count} commands");
            }
        }
        catch (JsonException e)
        {
            unexpected = DeliveryClassifier.ForUnexpectedBody(endpoint, "invalid JSON: " + e.Message);
        }

        return unexpected;
    }

    private static ReadOnlySpan<byte> ResultName(string method) =>
        ResultNames.TryGetValue(method, out var name) ? name : Encoding.UTF8.GetBytes(method);

    /// <summary>Reader on the StartObject of a reply; leaves it on the matching EndObject.</summary>
    private static Classification ParseReply(
        ref Utf8JsonReader reader, ReadOnlySpan<byte> resultName, bool broadcast, string endpoint, bool requireResult = false)
    {
        Classification? error = null;
        Classification? perChannel = null;
        var sawResult = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            sawResult |= reader.ValueTextEquals(resultName);
            if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    error = ParseError(ref reader);
                }
                else
                {
                    reader.Skip();
                }
            }
            else if (broadcast && reader.ValueTextEquals(resultName))
            {
                reader.Read();
                perChannel = ParseBroadcastResult(ref reader);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject)
        {
            return DeliveryClassifier.ForUnexpectedBody(endpoint, "malformed reply");
        }

        if (error is null && requireResult && !sawResult)
        {
            // Centrifugo always answers {"result":…} or {"error":…}; a 200 without either (a gateway's {} or
            // {"status":"ok"}, a maintenance page in JSON) is not Centrifugo's answer: never count it as delivered.
            return new Classification(DeliveryDecision.Stall, null,
                $"200 reply without \"result\" or \"error\" from {endpoint}: api.url does not point at Centrifugo's server API");
        }

        return error ?? perChannel ?? new Classification(DeliveryDecision.Delivered, null, "");
    }

    /// <summary>
    /// A non-200 body of Centrifugo's transport error mode, <c>{"code":N,"message":"…"}</c>, answered with
    /// <paramref name="status"/>: classified by its code (100 → retry, any other → rejected), exactly as the same error
    /// inside a 200 reply, but only when it is Centrifugo's: a code of Centrifugo's range (100–199) that Centrifugo
    /// answers with this very status. Null for anything else (a proxy's or gateway's <c>{"code":500,…}</c>, or
    /// <c>{"code":102}</c> with a 500): the status alone decides then (<see cref="DeliveryClassifier.ForStatus"/>).
    /// </summary>
    public static Classification? TransportError(ReadOnlySpan<byte> body, int status)
    {
        if (body.IsEmpty)
        {
            return null;
        }
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }
            int? code = null;
            string? message = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("code"u8) && reader.Read() && reader.TokenType == JsonTokenType.Number
                    && reader.TryGetInt32(out var c))
                {
                    code = c;
                }
                else if (reader.ValueTextEquals("message"u8) && reader.Read() && reader.TokenType == JsonTokenType.String)
                {
                    message = reader.GetString();
                }
                else
                {
                    return null; // another shape: not Centrifugo's error object
                }
            }
            return code is { } known && reader.TokenType == JsonTokenType.EndObject && DeliveryClassifier.TransportStatusOf(known) == status
                ? DeliveryClassifier.ForReplyError(known, message)
                : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private static string SafeString(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.GetString() ?? "";
        }
        catch (InvalidOperationException)
        {
            return "(message not valid UTF-8/UTF-16)";
        }
    }

    private static Classification ParseError(ref Utf8JsonReader reader)
    {
        var code = 0;
        string? message = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("code"u8))
            {
                reader.Read();
                if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var c))
                {
                    code = c;
                }
            }
            else if (reader.ValueTextEquals("message"u8))
            {
                reader.Read();
                message = reader.TokenType == JsonTokenType.String ? SafeString(ref reader) : null;
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        return DeliveryClassifier.ForReplyError(code, message);
    }

    /// <summary>
    /// Centrifugo retries the whole broadcast when any channel failed with 100 (publishers may use idempotency
    /// keys); other per-channel errors leave the broadcast done, reported in the outcome's reason.
    /// </summary>
    private static Classification? ParseBroadcastResult(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return null;
        }

        Classification? retry = null;
        StringBuilder? partial = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (!reader.ValueTextEquals("responses"u8))
            {
                reader.Read();
                reader.Skip();
                continue;
            }

            reader.Read();
            if (reader.TokenType != JsonTokenType.StartArray)
            {
                reader.Skip();
                continue;
            }

            var index = 0;
            while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
            {
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("error"u8) && reader.Read() && reader.TokenType == JsonTokenType.StartObject)
                    {
                        var channelError = ParseError(ref reader);
                        if (channelError.Decision == DeliveryDecision.Retry)
                        {
                            retry ??= channelError with { Message = $"broadcast channel #{index}: {channelError.Message}" };
                        }
                        else
                        {
                            partial ??= new StringBuilder("broadcast partly refused:");
                            partial.Append(" channel #").Append(index).Append(": ").Append(channelError.Message).Append(';');
                        }
                    }
                    else
                    {
                        if (reader.TokenType == JsonTokenType.PropertyName)
                        {
                            reader.Read();
                        }

                        reader.Skip();
                    }
                }

                index++;
            }
        }

        if (retry is not null)
        {
            return retry;
        }

        return partial is null ? null : new Classification(DeliveryDecision.Delivered, null, partial.ToString().TrimEnd(';'));
    }
}
