using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Centrifugo.Actors.Delivery;

/// <summary>
/// <c>derive_idempotency_key</c>: a publish or broadcast that carries no <c>idempotency_key</c> gets one derived from
/// where it comes from (consumer, partition, outbox id / Kafka topic and offset), so every redelivery of the same
/// source message carries the same key and Centrifugo drops it within its <c>idempotent_result_ttl</c> (5 min by
/// default; the key is scoped per channel). Pure and thread-safe.
/// <para>
/// The key is ASCII from <c>[A-Za-z0-9_.:-]</c> (consumer names are <c>[a-zA-Z0-9_]</c>, topic names
/// <c>[a-zA-Z0-9._-]</c>), so it is written into the request JSON without escaping, and at most
/// <see cref="MaxLength"/> characters: <c>ca:&lt;consumer&gt;:&lt;partition&gt;:&lt;id&gt;</c> and
/// <c>ca:&lt;consumer&gt;:&lt;topic&gt;:&lt;partition&gt;:&lt;offset&gt;</c>; when that would be longer, the
/// consumer (and topic) part is replaced by <c>h</c> + 16 hex digits of its SHA-256.
/// </para>
/// </summary>
internal static class IdempotencyKeys
{
    /// <summary>Longest derived key.</summary>
    public const int MaxLength = 64;

    private const string Prefix = "ca:";

    /// <summary>The key of outbox row <paramref name="id"/> of <paramref name="partition"/>.</summary>
    public static string ForOutbox(string consumer, int partition, long id) =>
        Compose(consumer, string.Create(CultureInfo.InvariantCulture, $":{partition}:{id}"));

    /// <summary>The key of the Kafka record at <paramref name="offset"/> of
    /// <paramref name="topic"/>/<paramref name="partition"/>.</summary>
    public static string ForKafka(string consumer, string topic, int partition, long offset) =>
        Compose(consumer + ":" + topic, string.Create(CultureInfo.InvariantCulture, $":{partition}:{offset}"));

    private static string Compose(string source, string position)
    {
        var key = Prefix + source + position;
        if (key.Length <= MaxLength)
        {
            return key;
        }

        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(source), hash);
        return Prefix + "h" + Convert.ToHexStringLower(hash[..8]) + position;
    }

    /// <summary>What a request says about its own key.</summary>
    internal enum Existing
    {
        /// <summary>No key (absent, null or ""): a derived one may be added.</summary>
        None,
        /// <summary>A non-empty key of its own: kept.</summary>
        Own,
        /// <summary>A key field of another JSON type (Centrifugo refuses the request): left as it is.</summary>
        Invalid,
    }

    /// <summary>
    /// How the top-level <c>idempotency_key</c> of <paramref name="request"/> (one JSON object) reads to Centrifugo:
    /// Go's encoding/json matches field names case-insensitively and the last duplicate wins.
    /// </summary>
    internal static Existing Inspect(ReadOnlySpan<byte> request)
    {
        var found = Existing.None;
        var reader = new Utf8JsonReader(request, CommandDecoder.ReaderOptions);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return Existing.Invalid;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isKey = IsKeyName(ref reader);
            reader.Read();
            if (!isKey)
            {
                reader.Skip();
                continue;
            }

            found = reader.TokenType switch
            {
                JsonTokenType.Null => found, // null leaves the field as it was
                JsonTokenType.String => reader.ValueSpan.Length == 0 ? Existing.None : Existing.Own,
                _ => Existing.Invalid,
            };
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                reader.Skip();
            }
        }

        return found;
    }

    private static bool IsKeyName(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            return System.Text.Ascii.EqualsIgnoreCase(reader.ValueSpan, "idempotency_key"u8);
        }

        string name;
        try
        {
            name = reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            // A lone surrogate escape or invalid UTF-8, which Go reads as U+FFFD: that folds to no ASCII letter, so the
            // name is not idempotency_key.
            return false;
        }

        // Go's folding also maps the Kelvin sign (U+212A) to k, which OrdinalIgnoreCase does not.
        return string.Equals(name.Replace('\u212A', 'k'), "idempotency_key", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// <paramref name="decoded"/> with <paramref name="key"/> attached when it is a publish or broadcast without a key
    /// of its own; anything else unchanged. <paramref name="key"/> is only called when needed.
    /// </summary>
    public static DecodeResult Attach(DecodeResult decoded, Func<string> key)
    {
        if (decoded.Command is not { Method: ApiMethods.Publish or ApiMethods.Broadcast } command
            || Inspect(command.Request.Span) != Existing.None)
        {
            return decoded;
        }

        return DecodeResult.Ok(command with { DerivedIdempotencyKey = key() });
    }

    /// <summary>Bytes <see cref="Write"/> writes for <paramref name="command"/>.</summary>
    public static int WrittenLength(ApiCommand command)
    {
        if (command.DerivedIdempotencyKey is not { } key)
        {
            return command.Request.Length;
        }

        var span = command.Request.Span;
        var end = span.LastIndexOf((byte)'}');
        return end + (IsEmptyObject(span, end) ? 0 : 1) + KeyField.Length + key.Length + 2;
    }

    private static ReadOnlySpan<byte> KeyField => "\"idempotency_key\":\""u8;

    /// <summary>
    /// Writes the request of <paramref name="command"/> to <paramref name="destination"/>: verbatim, or, with a derived
    /// key, the object with <c>"idempotency_key":"…"</c> added as its last member (the last duplicate wins in Go, so it
    /// also replaces an empty or null one); trailing whitespace after the object is dropped. Returns the bytes written.
    /// </summary>
    public static int Write(ApiCommand command, Span<byte> destination)
    {
        var span = command.Request.Span;
        if (command.DerivedIdempotencyKey is not { } key)
        {
            span.CopyTo(destination);
            return span.Length;
        }

        var end = span.LastIndexOf((byte)'}');
        span[..end].CopyTo(destination);
        var at = end;
        if (!IsEmptyObject(span, end))
        {
            destination[at++] = (byte)',';
        }

        KeyField.CopyTo(destination[at..]);
        at += KeyField.Length;
        at += Encoding.ASCII.GetBytes(key, destination[at..]);
        destination[at++] = (byte)'"';
        destination[at++] = (byte)'}';
        return at;
    }

    private static bool IsEmptyObject(ReadOnlySpan<byte> request, int end) =>
        request[..end].TrimEnd(" \t\r\n"u8) is var inner && inner.Length > 0 && inner[^1] == (byte)'{';
}
