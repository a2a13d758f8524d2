using System.Text;

namespace Centrifugo.Actors.Configuration;

/// <summary>Where a TLS PEM value comes from: a file (read by whoever uses it) or the PEM text itself.</summary>
internal readonly record struct PemSource(bool IsPath, string Value)
{
    /// <summary>The PEM text: the file's content or the value.</summary>
    public string ReadText() => IsPath ? File.ReadAllText(Value) : Value;
}

/// <summary>
/// Centrifugo's TLS PEM fields (<c>cert_pem</c>, <c>key_pem</c>, <c>server_ca_pem</c>) hold raw PEM, a file path or
/// base64 of PEM, checked in that order. The one reader of that format: the loader resolves every enabled consumer's
/// values with it into their PEM text (so <c>check-config</c> reports a bad one, and a file is read once, at load),
/// and the PostgreSQL and Kafka clients take that text (options built in code may still hold a path, resolved by
/// the client). Error messages name the field, never the value (a key is a secret).
/// </summary>
internal static class PemInput
{
    private const string Begin = "-----BEGIN";

    /// <summary>Null when unset; otherwise the file path or the PEM text.</summary>
    /// <exception cref="ConfigException">The value is neither PEM, base64-encoded PEM nor an existing file.</exception>
    public static PemSource? Resolve(string? value, string field)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var trimmed = value.Trim();
        if (trimmed.Contains(Begin, StringComparison.Ordinal))
        {
            return new PemSource(false, trimmed);
        }

        if (File.Exists(trimmed))
        {
            return new PemSource(true, trimmed);
        }

        var buffer = new byte[trimmed.Length];
        if (Convert.TryFromBase64String(trimmed, buffer, out var written))
        {
            var decoded = Encoding.UTF8.GetString(buffer, 0, written);
            if (decoded.Contains(Begin, StringComparison.Ordinal))
            {
                return new PemSource(false, decoded.Trim());
            }
        }

        throw new ConfigException($"tls.{field} is neither PEM, base64-encoded PEM nor an existing file path");
    }

    /// <summary>Null when unset; otherwise the PEM text (a file's content is read now).</summary>
    /// <exception cref="ConfigException">The value is not PEM input, or its file cannot be read.</exception>
    public static string? ReadText(string? value, string field)
    {
        try
        {
            return Resolve(value, field)?.ReadText();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"tls.{field}: cannot read the file: {ex.Message}");
        }
    }
}
