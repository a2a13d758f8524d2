using System.Text.Json;
using System.Text.Json.Nodes;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// Centrifugo v5.2 Kafka TLS is a bool <c>tls</c> plus flat keys (file-path and <c>*_pem</c> variants); v6 is a
/// <c>tls</c> object. We rewrite the flat form into the object so everything after sees one shape. Files and raw
/// PEM land in the same field: TlsOptions PEM values accept a path, raw PEM or base64 PEM.
/// </summary>
internal static class KafkaLegacyTls
{
    /// <summary>(v5.2 flat key, v6 tls object field). <c>tls_server_name</c> is what v5 code read, docs say <c>server_name</c>.</summary>
    public static readonly IReadOnlyList<(string FlatKey, string TlsField)> FlatKeys =
    [
        ("tls_cert", "cert_pem"),
        ("tls_cert_pem", "cert_pem"),
        ("tls_key", "key_pem"),
        ("tls_key_pem", "key_pem"),
        ("tls_root_ca", "server_ca_pem"),
        ("tls_root_ca_pem", "server_ca_pem"),
        ("tls_client_ca", "client_ca_pem"),
        ("tls_client_ca_pem", "client_ca_pem"),
        ("tls_insecure_skip_verify", "insecure_skip_verify"),
        ("server_name", "server_name"),
        ("tls_server_name", "server_name"),
    ];

    public static void Normalize(JsonObject kafka, Func<string, ConfigException> fail)
    {
        var present = FlatKeys.Where(k => kafka.ContainsKey(k.FlatKey)).ToList();
        var tlsNode = kafka["tls"];
        var tlsIsBool = tlsNode?.GetValueKind() is JsonValueKind.True or JsonValueKind.False;
        if (tlsNode is not null and not JsonObject && !tlsIsBool)
        {
            throw fail($"tls: expected a boolean (v5.2) or an object (v6), got {JsonFields.Describe(tlsNode)}");
        }

        if (present.Count == 0 && !tlsIsBool)
        {
            return;
        }

        if (tlsNode is JsonObject)
        {
            throw fail($"{present[0].FlatKey} is a v5.2 flat TLS key and cannot be combined with the v6 \"tls\" object; " +
                $"move it into \"tls\" as \"{present[0].TlsField}\"");
        }

        var tls = new JsonObject { ["enabled"] = tlsIsBool && tlsNode!.GetValue<bool>() };
        foreach (var (flatKey, field) in present)
        {
            var node = kafka[flatKey];
            kafka.Remove(flatKey);
            if (node is null)
            {
                continue;
            }

            var expectBool = field == "insecure_skip_verify";
            var kind = node.GetValueKind();
            if (expectBool ? kind is not (JsonValueKind.True or JsonValueKind.False) : kind != JsonValueKind.String)
            {
                throw fail($"{flatKey}: expected {(expectBool ? "a boolean" : "a string")}, got {JsonFields.Describe(node)}");
            }

            if (tls.ContainsKey(field))
            {
                var other = FlatKeys.First(k => k.TlsField == field && k.FlatKey != flatKey && present.Contains(k)).FlatKey;
                throw fail($"{other} and {flatKey} are both set; set only one of them");
            }

            tls[field] = node.DeepClone();
        }

        kafka["tls"] = tls;
    }
}
