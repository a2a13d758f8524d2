using System.Text.Json;
using System.Text.Json.Nodes;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// Schema checks (unknown keys, JSON types) and typed reads over a parsed config object. Messages name the key
/// and the expected type, never the value (a value may be a secret).
/// </summary>
internal static class JsonFields
{
    /// <summary>
    /// Throws for a key not in <paramref name="fields"/> or a value of the wrong JSON type; recurses into objects.
    /// <paramref name="path"/> prefixes key names in messages ("tls."), <paramref name="where"/> names the block
    /// for unknown keys (" in postgresql"). JSON null counts as absent, as in Go.
    /// </summary>
    public static void Check(JsonObject obj, IReadOnlyList<FieldSpec> fields, string path, string where, Func<string, ConfigException> fail)
    {
        foreach (var (key, node) in obj)
        {
            var spec = fields.FirstOrDefault(f => f.Name == key);
            if (spec is null)
            {
                throw fail($"unknown key \"{path}{key}\"{where}{Suggest(key, fields.Select(f => f.Name), path)}");
            }

            if (node is null || spec.Kind == FieldKind.Any)
            {
                continue;
            }

            var name = path + key;
            switch (spec.Kind)
            {
                case FieldKind.String when node.GetValueKind() != JsonValueKind.String:
                    throw fail($"{name}: expected a string, got {Describe(node)}");
                case FieldKind.Bool when node.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False):
                    throw fail($"{name}: expected a boolean, got {Describe(node)}");
                case FieldKind.Int:
                    CheckInt(node, name, fail);
                    break;
                case FieldKind.Duration:
                    _ = ReadDuration(node, name, fail);
                    break;
                case FieldKind.StringList:
                    if (node is not JsonArray array)
                    {
                        throw fail($"{name}: expected an array of strings, got {Describe(node)}");
                    }

                    for (var i = 0; i < array.Count; i++)
                    {
                        if (array[i]?.GetValueKind() != JsonValueKind.String)
                        {
                            throw fail($"{name}[{i}]: expected a string, got {Describe(array[i])}");
                        }
                    }

                    break;
                case FieldKind.Object:
                    if (node is not JsonObject child)
                    {
                        throw fail($"{name}: expected an object, got {Describe(node)}");
                    }

                    Check(child, spec.Fields!, name + ".", where, fail);
                    break;
            }
        }
    }

    public static string Describe(JsonNode? node) => node?.GetValueKind() switch
    {
        null or JsonValueKind.Null => "null",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "an unsupported value",
    };

    /// <summary>" (did you mean \"x\"?)" for the closest candidate within a small edit distance, else "".</summary>
    public static string Suggest(string key, IEnumerable<string> candidates, string path = "")
    {
        var best = candidates
            .Select(c => (Candidate: c, Distance: EditDistance(key, c)))
            .Where(x => x.Distance <= Math.Min(2, Math.Max(1, key.Length / 3)))
            .OrderBy(x => x.Distance)
            .ThenBy(x => x.Candidate, StringComparer.Ordinal)
            .FirstOrDefault();
        return best.Candidate is null ? "" : $" (did you mean \"{path}{best.Candidate}\"?)";
    }

    public static JsonObject? Object(JsonObject? obj, string key) => obj?[key] as JsonObject;

    public static string? String(JsonObject? obj, string key) =>
        obj?[key] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;

    public static bool? Bool(JsonObject? obj, string key) => obj?[key]?.GetValueKind() switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    public static int? Int(JsonObject? obj, string key) =>
        obj?[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<int>() : null;

    public static IReadOnlyList<string>? StringList(JsonObject? obj, string key) =>
        obj?[key] is JsonArray a ? a.Select(n => n!.GetValue<string>()).ToList() : null;

    public static TimeSpan? Duration(JsonObject? obj, string key, Func<string, ConfigException> fail) =>
        obj?[key] is { } node ? ReadDuration(node, key, fail) : null;

    private static void CheckInt(JsonNode node, string name, Func<string, ConfigException> fail)
    {
        if (node.GetValueKind() != JsonValueKind.Number || !node.AsValue().TryGetValue<JsonElement>(out var element) ||
            !element.TryGetInt64(out var value))
        {
            throw fail($"{name}: expected an integer, got {Describe(node)}");
        }

        if (value is < int.MinValue or > int.MaxValue)
        {
            throw fail($"{name}: {value} is out of range");
        }
    }

    private static TimeSpan ReadDuration(JsonNode node, string name, Func<string, ConfigException> fail)
    {
        switch (node.GetValueKind())
        {
            case JsonValueKind.String:
                if (!GoDuration.TryParse(node.GetValue<string>(), out var parsed, out var error))
                {
                    throw fail($"{name} {error}");
                }

                return parsed;
            case JsonValueKind.Number when node.AsValue().TryGetValue<JsonElement>(out var element) && element.TryGetInt64(out var nanos):
                return GoDuration.FromNanoseconds(nanos);
            default:
                throw fail(
                    $"{name}: expected a duration (a Go duration string such as \"300ms\" or integer nanoseconds), got {Describe(node)}");
        }
    }

    /// <summary>Optimal string alignment distance: a swapped pair of letters ("kye") counts as one edit.</summary>
    private static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }

        for (var j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }

        return d[a.Length, b.Length];
    }

    /// <summary>
    /// Parses JSON into nodes with Go's semantics for duplicate keys (the last one wins) instead of JsonObject's
    /// exception, so a Centrifugo config that Centrifugo accepts is not rejected for that.
    /// </summary>
    public static JsonNode? ParseLastKeyWins(string json)
    {
        using var document = JsonDocument.Parse(json);
        return ToNode(document.RootElement);
    }

    private static JsonNode? ToNode(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var obj = new JsonObject();
                foreach (var property in element.EnumerateObject())
                {
                    obj[property.Name] = ToNode(property.Value);
                }

                return obj;
            case JsonValueKind.Array:
                var array = new JsonArray();
                foreach (var item in element.EnumerateArray())
                {
                    array.Add(ToNode(item));
                }

                return array;
            case JsonValueKind.Null:
                return null;
            default:
                return JsonValue.Create(element.Clone());
        }
    }
}
