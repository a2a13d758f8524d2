using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Centrifugo.Actors.Configuration;

namespace Centrifugo.Actors.Delivery;

/// <summary>
/// Kafka "publication data mode" (Centrifugo's <c>publication_data_mode</c>): the record value is the publication data, the headers carry
/// the channels and metadata. One channel becomes a publish request, several a broadcast. Pure and thread-safe.
/// </summary>
internal static class PublicationDecoder
{
    /// <summary>
    /// Builds the publish/broadcast request. Header lookup is exact and case-sensitive, first match wins
    /// (tags: every header with the prefix, a later duplicate overwrites, as Go's map assignment does).
    /// A value that is valid JSON is sent verbatim as <c>data</c>; any other non-empty value is sent as
    /// <c>b64data</c>, which hands Centrifugo exactly the same bytes the in-process consumer would pass
    /// (the namespace's publication_data_format then decides, as it does for Centrifugo). An empty value
    /// omits data (Centrifugo decides: 107 for JSON namespaces).
    /// Rejects (reason names the header): no channels, delta not a Go bool, version not a uint64.
    /// </summary>
    public static DecodeResult Decode(
        ReadOnlyMemory<byte> value,
        IReadOnlyList<KeyValuePair<string, byte[]>> headers,
        PublicationDataModeOptions options)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(options);

        var channels = Header(headers, options.ChannelsHeader);
        if (string.IsNullOrEmpty(channels))
        {
            return DecodeResult.Reject($"no channels (header \"{options.ChannelsHeader}\" is missing or empty)");
        }

        var deltaText = Header(headers, options.DeltaHeader);
        var delta = false;
        if (!string.IsNullOrEmpty(deltaText) && !TryParseGoBool(deltaText, out delta))
        {
            return DecodeResult.Reject($"header \"{options.DeltaHeader}\" is not a boolean: \"{deltaText}\"");
        }

        var versionText = Header(headers, options.VersionHeader);
        ulong version = 0;
        if (!string.IsNullOrEmpty(versionText)
            && !ulong.TryParse(versionText, NumberStyles.None, CultureInfo.InvariantCulture, out version))
        {
            return DecodeResult.Reject($"header \"{options.VersionHeader}\" is not an unsigned 64-bit integer: \"{versionText}\"");
        }

        var idempotencyKey = Header(headers, options.IdempotencyKeyHeader);
        var versionEpoch = Header(headers, options.VersionEpochHeader);
        var dataIsJson = value.Length > 0 && IsValidJson(value.Span);

        var buffer = new ArrayBufferWriter<byte>(value.Length + channels.Length + 128);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true }))
        {
            writer.WriteStartObject();
            var split = channels.Split(',');
            string method;
            if (split.Length == 1)
            {
                method = ApiMethods.Publish;
                writer.WriteString("channel"u8, split[0]);
            }
            else
            {
                method = ApiMethods.Broadcast;
                writer.WriteStartArray("channels"u8);
                foreach (var channel in split)
                {
                    writer.WriteStringValue(channel);
                }

                writer.WriteEndArray();
            }

            if (dataIsJson)
            {
                writer.WritePropertyName("data"u8);
                writer.WriteRawValue(value.Span, skipInputValidation: true);
            }
            else if (value.Length > 0)
            {
                writer.WriteBase64String("b64data"u8, value.Span);
            }

            if (!string.IsNullOrEmpty(idempotencyKey))
            {
                writer.WriteString("idempotency_key"u8, idempotencyKey);
            }

            if (delta)
            {
                writer.WriteBoolean("delta"u8, true);
            }

            if (version != 0)
            {
                writer.WriteNumber("version"u8, version);
            }

            if (!string.IsNullOrEmpty(versionEpoch))
            {
                writer.WriteString("version_epoch"u8, versionEpoch);
            }

            WriteTags(writer, headers, options.TagsHeaderPrefix);
            writer.WriteEndObject();
            writer.Flush();
            return DecodeResult.Ok(new ApiCommand(method, buffer.WrittenMemory));
        }
    }

    private static void WriteTags(Utf8JsonWriter writer, IReadOnlyList<KeyValuePair<string, byte[]>> headers, string prefix)
    {
        Dictionary<string, string>? tags = null;
        foreach (var (key, value) in headers)
        {
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                tags ??= new Dictionary<string, string>(StringComparer.Ordinal);
                tags[key[prefix.Length..]] = Text(value);
            }
        }

        if (tags is null)
        {
            return;
        }

        writer.WriteStartObject("tags"u8);
        foreach (var (key, value) in tags)
        {
            writer.WriteString(key, value);
        }

        writer.WriteEndObject();
    }

    private static string? Header(IReadOnlyList<KeyValuePair<string, byte[]>> headers, string name)
    {
        for (var i = 0; i < headers.Count; i++)
        {
            if (string.Equals(headers[i].Key, name, StringComparison.Ordinal))
            {
                return Text(headers[i].Value);
            }
        }

        return null;
    }

    private static string Text(byte[]? bytes) => bytes is null || bytes.Length == 0 ? "" : Encoding.UTF8.GetString(bytes);

    /// <summary>Go's strconv.ParseBool: exactly 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.</summary>
    internal static bool TryParseGoBool(string text, out bool value)
    {
        switch (text)
        {
            case "1" or "t" or "T" or "TRUE" or "true" or "True":
                value = true;
                return true;
            case "0" or "f" or "F" or "FALSE" or "false" or "False":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    private static bool IsValidJson(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json, CommandDecoder.ReaderOptions);
            if (!reader.Read())
            {
                return false;
            }

            reader.Skip();
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
