using System.Text;
using System.Text.Json;

namespace Centrifugo.Actors.Delivery;

/// <summary>Result of turning a source message into a command: either a command or a reason to dead-letter it.</summary>
internal readonly record struct DecodeResult(ApiCommand? Command, string? RejectReason)
{
    public static DecodeResult Ok(ApiCommand command) => new(command, null);
    public static DecodeResult Reject(string reason) => new(null, reason);
}

/// <summary>
/// Command mode decoding (a method and its request, as Centrifugo's consumers take them). Pure and thread-safe; allocation-free apart from
/// the result when the body already is the request (the command's request then points into the caller's body memory).
/// </summary>
internal static class CommandDecoder
{
    // Go's encoding/json nests up to 10000 levels; System.Text.Json's default 64 would reject bodies Centrifugo accepts.
    internal static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 10_000 };

    /// <summary>
    /// <paramref name="method"/> given out of band (column/header) ⇒ body is the request JSON verbatim;
    /// null/empty ⇒ body must be the {"method","payload"} envelope (payload object, or a JSON string holding JSON).
    /// Only the 7 accepted methods yield a command; anything else is rejected with a reason naming the method.
    /// The request must be a single JSON object: it is embedded verbatim into /batch bodies.
    /// </summary>
    public static DecodeResult Decode(string? method, ReadOnlyMemory<byte> body)
    {
        if (!string.IsNullOrEmpty(method))
        {
            var accepted = Canonical(method);
            if (accepted is null)
            {
                return DecodeResult.Reject(Unsupported(method));
            }

            return IsSingleObject(body.Span, out var error)
                ? DecodeResult.Ok(new ApiCommand(accepted, body))
                : DecodeResult.Reject($"request JSON for method \"{method}\" is not a JSON object: {error}");
        }

        return DecodeEnvelope(body);
    }

    /// <summary>
    /// <see cref="Decode(string?, ReadOnlyMemory{byte})"/> with the method as the UTF-8 bytes of a header: an accepted
    /// method is matched on the bytes (no string per record); only an empty or refused one is turned into text.
    /// </summary>
    public static DecodeResult DecodeWithMethodHeader(ReadOnlySpan<byte> method, ReadOnlyMemory<byte> body)
    {
        if (method.IsEmpty)
        {
            return DecodeEnvelope(body);
        }

        var accepted = Canonical(method);
        return accepted is null
            ? Decode(Encoding.UTF8.GetString(method), body)
            : Decode(accepted, body);
    }

    /// <summary>The <see cref="ApiMethods"/> constant whose UTF-8 bytes equal <paramref name="utf8"/> (exact), or null.</summary>
    internal static string? Canonical(ReadOnlySpan<byte> utf8) => utf8.Length switch
    {
        7 when utf8.SequenceEqual("publish"u8) => ApiMethods.Publish,
        7 when utf8.SequenceEqual("refresh"u8) => ApiMethods.Refresh,
        9 when utf8.SequenceEqual("broadcast"u8) => ApiMethods.Broadcast,
        9 when utf8.SequenceEqual("subscribe"u8) => ApiMethods.Subscribe,
        10 when utf8.SequenceEqual("disconnect"u8) => ApiMethods.Disconnect,
        11 when utf8.SequenceEqual("unsubscribe"u8) => ApiMethods.Unsubscribe,
        14 when utf8.SequenceEqual("history_remove"u8) => ApiMethods.HistoryRemove,
        _ => null,
    };

    /// <summary>Maps a method name to its <see cref="ApiMethods"/> constant (exact, case-sensitive), or null.</summary>
    internal static string? Canonical(string method) => method switch
    {
        ApiMethods.Publish => ApiMethods.Publish,
        ApiMethods.Broadcast => ApiMethods.Broadcast,
        ApiMethods.Subscribe => ApiMethods.Subscribe,
        ApiMethods.Unsubscribe => ApiMethods.Unsubscribe,
        ApiMethods.Disconnect => ApiMethods.Disconnect,
        ApiMethods.HistoryRemove => ApiMethods.HistoryRemove,
        ApiMethods.Refresh => ApiMethods.Refresh,
        _ => null,
    };

    private static string Unsupported(string method) =>
        $"unsupported method {JsonSerializer.Serialize(method)} (read-only or unknown)";

    /// <summary>True when <paramref name="json"/> is exactly one valid JSON object (whitespace around allowed).</summary>
    internal static bool IsSingleObject(ReadOnlySpan<byte> json, out string? error)
    {
        if (json.Trim(" \t\r\n"u8).IsEmpty)
        {
            error = "empty body";
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(json, ReaderOptions);
            if (!reader.Read())
            {
                error = "empty body";
                return false;
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                error = $"found {Describe(reader.TokenType)}";
                return false;
            }

            reader.Skip();
            // Read() throws on trailing content after the top-level value, returns false at the clean end.
            if (reader.Read())
            {
                error = "trailing data after the object";
                return false;
            }

            error = null;
            return true;
        }
        catch (JsonException e)
        {
            error = "invalid JSON (" + e.Message + ")";
            return false;
        }
    }

    private static DecodeResult DecodeEnvelope(ReadOnlyMemory<byte> body)
    {
        string? method = null;
        ReadOnlyMemory<byte> payload = default;
        var payloadKind = JsonTokenType.None;
        if (body.Span.Trim(" \t\r\n"u8).IsEmpty)
        {
            return Malformed("empty body");
        }

        try
        {
            var reader = new Utf8JsonReader(body.Span, ReaderOptions);
            if (!reader.Read())
            {
                return Malformed("empty body");
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                return Malformed($"expected a JSON object with \"method\" and \"payload\", found {Describe(reader.TokenType)}");
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                // Go's encoding/json matches field names case-insensitively; the last duplicate wins.
                var isMethod = NameEquals(ref reader, "method"u8);
                var isPayload = !isMethod && NameEquals(ref reader, "payload"u8);
                reader.Read();
                if (isMethod)
                {
                    switch (reader.TokenType)
                    {
                        case JsonTokenType.String:
                            // An accepted method is matched on its bytes (no string per record); others are read as text.
                            method = !reader.ValueIsEscaped && !reader.HasValueSequence && Canonical(reader.ValueSpan) is { } known
                                ? known
                                : reader.GetString();
                            break;
                        case JsonTokenType.Null:
                            break;
                        default:
                            return Malformed($"\"method\" must be a string, found {Describe(reader.TokenType)}");
                    }
                }
                else if (isPayload)
                {
                    payloadKind = reader.TokenType;
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        // Debezium emits JSONB columns as JSON strings: unquote, then treat as the request JSON.
                        var unescaped = new byte[reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length];
                        var written = reader.CopyString(unescaped);
                        payload = unescaped.AsMemory(0, written);
                    }
                    else
                    {
                        var start = (int)reader.TokenStartIndex;
                        reader.Skip();
                        payload = body.Slice(start, (int)reader.BytesConsumed - start);
                    }
                }
                else
                {
                    reader.Skip();
                }
            }

            // Validates the remainder (trailing data throws).
            while (reader.Read())
            {
            }
        }
        catch (JsonException e)
        {
            return Malformed("invalid JSON (" + e.Message + ")");
        }
        catch (InvalidOperationException e)
        {
            // Utf8JsonReader.Read() checks neither UTF-8 nor surrogate pairs inside strings; unescaping them
            // (GetString, CopyString) throws for a lone surrogate escape ("\ud800") or invalid UTF-8 bytes in the
            // method, a property name or a JSON-string payload. Such a record can never be decoded: dead-letter it.
            return Malformed("invalid string in the envelope (" + e.Message + ")");
        }

        if (string.IsNullOrEmpty(method))
        {
            return Malformed("\"method\" is missing or empty");
        }

        var accepted = Canonical(method);
        if (accepted is null)
        {
            return DecodeResult.Reject(Unsupported(method));
        }

        switch (payloadKind)
        {
            case JsonTokenType.None:
                return Malformed("\"payload\" is missing");
            case JsonTokenType.StartObject:
                return DecodeResult.Ok(new ApiCommand(accepted, payload));
            case JsonTokenType.String:
                return IsSingleObject(payload.Span, out var error)
                    ? DecodeResult.Ok(new ApiCommand(accepted, payload))
                    : Malformed("\"payload\" string does not hold a JSON object: " + error);
            default:
                return Malformed($"\"payload\" must be a JSON object or a string holding one, found {Describe(payloadKind)}");
        }
    }

    private static DecodeResult Malformed(string what) => DecodeResult.Reject("malformed envelope: " + what);

    /// <summary>ASCII case-insensitive property-name match (Go encoding/json semantics for our ASCII field names).</summary>
    internal static bool NameEquals(ref Utf8JsonReader reader, ReadOnlySpan<byte> lowerName)
    {
        if (reader.ValueIsEscaped || reader.HasValueSequence)
        {
            var name = reader.GetString()!;
            return string.Equals(name, Encoding.UTF8.GetString(lowerName), StringComparison.OrdinalIgnoreCase);
        }

        return Ascii.EqualsIgnoreCase(reader.ValueSpan, lowerName);
    }

    internal static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartArray => "an array",
        JsonTokenType.StartObject => "an object",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };
}
