using System.Collections;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// Environment overrides, applied to the parsed JSON before binding so that env and file values go through the
/// same checks. Names follow Centrifugo: <c>CENTRIFUGO_CONSUMERS</c>; v6 envconfig
/// <c>CENTRIFUGO_CONSUMERS_&lt;NAME&gt;_&lt;FIELD&gt;[_&lt;NESTED&gt;…]</c> for every consumer field; v5.2
/// <c>CENTRIFUGO_CONSUMERS_POSTGRESQL|KAFKA_&lt;NAME&gt;_&lt;FIELD&gt;</c> for every field of the type block (v5.2 only
/// had DSN, BROKERS, SASL_USER, SASL_PASSWORD; the rest come free with the same naming); plus our own sections.
/// An empty value counts as unset. Values are never echoed in errors.
/// </summary>
internal sealed class EnvOverrides
{
    public const string ConsumersVariable = "CENTRIFUGO_CONSUMERS";
    private const string ConsumersPrefix = "CENTRIFUGO_CONSUMERS_";

    private readonly Dictionary<string, string> _values;

    public EnvOverrides(IDictionary environment)
    {
        _values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in environment)
        {
            if (entry.Key is string key && entry.Value is string { Length: > 0 } value)
            {
                _values[key] = value;
            }
        }
    }

    public string? Get(string name) => _values.GetValueOrDefault(name);

    /// <summary>Env name prefix of a consumer (Centrifugo's NameForEnv, upper-cased by envconfig).</summary>
    public static string ConsumerPrefix(string name) =>
        ConsumersPrefix + name.Replace('.', '_').Replace('-', '_').ToUpperInvariant() + "_";

    /// <summary>The v5.2 prefix for the type block of a consumer, e.g. CENTRIFUGO_CONSUMERS_POSTGRESQL_PG_MAIN_.</summary>
    public static string LegacyPrefix(string type, string name) =>
        ConsumersPrefix + type.ToUpperInvariant() + "_" + name.ToUpperInvariant() + "_";

    /// <summary>
    /// CENTRIFUGO_CONSUMERS: a JSON array replaces the file's list; otherwise space-separated names create
    /// entries holding only a name. Null when unset.
    /// </summary>
    public JsonArray? ConsumersReplacement()
    {
        var value = Get(ConsumersVariable);
        if (value is null)
        {
            return null;
        }

        var trimmed = value.Trim();
        // Centrifugo needs both brackets for JSON; a leading '[' alone is a broken array, never a name list, and
        // must not be echoed back as "invalid names" (it may hold DSNs).
        if (trimmed.StartsWith('['))
        {
            try
            {
                return JsonFields.ParseLastKeyWins(trimmed) as JsonArray
                       ?? throw new ConfigException($"{ConsumersVariable}: expected a JSON array");
            }
            catch (JsonException ex)
            {
                throw new ConfigException(
                    $"{ConsumersVariable} is not valid JSON at position {(ex.BytePositionInLine ?? 0) + 1}: " +
                    $"{ConfigLoader.TrimJsonMessage(ex)}");
            }
        }

        var array = new JsonArray();
        var names = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < names.Length; i++)
        {
            if (!ConsumerBinder.IsValidName(names[i]))
            {
                throw new ConfigException($"{ConsumersVariable}: name #{i + 1} is not a valid consumer name " +
                    $"(expected a JSON array or space-separated names matching {ConsumerBinder.NamePattern})");
            }

            array.Add(new JsonObject { ["name"] = names[i] });
        }

        return array;
    }

    /// <summary>Every env name the v6 form defines for a consumer (used to keep the v5.2 form from re-reading them).</summary>
    public static IEnumerable<string> ConsumerNames(string name) =>
        ConfigSchema.EnvLeaves(ConfigSchema.Consumer).Select(l => ConsumerPrefix(name) + l.EnvSuffix);

    /// <summary>
    /// Applies the v5.2 then the v6 per-consumer variables (v6 wins for the same field). A v5.2-form name that is
    /// also a v6-form name of any configured consumer belongs to the v6 reading (see README: env ambiguity).
    /// </summary>
    public void ApplyToConsumer(JsonObject consumer, string name, IReadOnlySet<string> v6Names)
    {
        foreach (var (type, fields) in new[] { ("postgresql", ConfigSchema.Postgresql), ("kafka", ConfigSchema.Kafka) })
        {
            var prefix = LegacyPrefix(type, name);
            var typeSpec = ConfigSchema.Consumer.First(f => f.Name == type);
            foreach (var (path, suffix) in ConfigSchema.EnvLeaves(fields))
            {
                ApplyOne(consumer, [typeSpec, .. path], prefix + suffix, v6Names);
            }

            if (type == "kafka")
            {
                var tlsSpec = typeSpec.Find("tls")!;
                ApplyOne(consumer, [typeSpec, tlsSpec, tlsSpec.Find("enabled")!], prefix + "TLS", v6Names);
                foreach (var (flatKey, field) in KafkaLegacyTls.FlatKeys)
                {
                    ApplyOne(consumer, [typeSpec, tlsSpec, tlsSpec.Find(field)!], prefix + flatKey.ToUpperInvariant(), v6Names);
                }
            }
        }

        ApplySection(consumer, ConfigSchema.Consumer, ConsumerPrefix(name));
    }

    /// <summary>Sets every field of a section that has a variable <paramref name="prefix"/>+FIELD[_NESTED].</summary>
    public void ApplySection(JsonObject section, IReadOnlyList<FieldSpec> fields, string prefix)
    {
        foreach (var (path, suffix) in ConfigSchema.EnvLeaves(fields))
        {
            ApplyOne(section, path, prefix + suffix, excluded: null);
        }
    }

    private void ApplyOne(JsonObject target, IReadOnlyList<FieldSpec> path, string variable, IReadOnlySet<string>? excluded)
    {
        if (excluded?.Contains(variable) == true || Get(variable) is not { } raw)
        {
            return;
        }

        var value = Convert(variable, raw, path[^1]);
        var node = target;
        for (var i = 0; i < path.Count - 1; i++)
        {
            if (node[path[i].Name] is not JsonObject child)
            {
                // The file's value was checked to be an object or absent before env is applied.
                child = new JsonObject();
                node[path[i].Name] = child;
            }

            node = child;
        }

        node[path[^1].Name] = value;
    }

    private static JsonNode Convert(string variable, string raw, FieldSpec leaf)
    {
        switch (leaf.Kind)
        {
            case FieldKind.Bool:
                return ParseBool(raw) is { } b
                    ? JsonValue.Create(b)
                    : throw new ConfigException(
                        $"{variable}: expected a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)");
            case FieldKind.Int:
                return int.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)
                    ? JsonNode.Parse(i.ToString(CultureInfo.InvariantCulture))!
                    : throw new ConfigException($"{variable}: expected an integer");
            case FieldKind.Duration:
                return GoDuration.TryParse(raw, out _, out var error)
                    ? JsonNode.Parse(JsonSerializer.Serialize(raw))!
                    : throw new ConfigException($"{variable} {error}");
            case FieldKind.StringList:
                var array = new JsonArray();
                foreach (var item in raw.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    array.Add(JsonNode.Parse(JsonSerializer.Serialize(item)));
                }

                return array;
            default:
                return JsonNode.Parse(JsonSerializer.Serialize(raw))!;
        }
    }

    /// <summary>Go's strconv.ParseBool.</summary>
    public static bool? ParseBool(string value) => value switch
    {
        "1" or "t" or "T" or "TRUE" or "true" or "True" => true,
        "0" or "f" or "F" or "FALSE" or "false" or "False" => false,
        _ => null,
    };
}
