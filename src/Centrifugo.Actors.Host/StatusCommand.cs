using System.Globalization;
using System.Text.Json;

namespace Centrifugo.Actors.Host;

/// <summary>
/// `status`: the cluster (members, leader) and every partition in it (node, state, delivered, dead-lettered, errors,
/// lag, last error), read from any node's admin endpoint. Exit codes as the other verbs: 0 healthy, 1 the endpoint
/// cannot be read, 3 a member unreachable or a partition stalled or unreachable.
/// </summary>
internal static class StatusCommand
{
    public static async Task<int> RunAsync(string adminUrl, TextWriter output, TextWriter error, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };
        var baseUri = adminUrl.TrimEnd('/');
        JsonDocument cluster, partitions;
        try
        {
            cluster = JsonDocument.Parse(await http.GetStringAsync(new Uri($"{baseUri}/status/cluster"), cancellationToken));
            partitions = JsonDocument.Parse(await http.GetStringAsync(new Uri($"{baseUri}/status/partitions?scope=cluster"), cancellationToken));
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or UriFormatException)
        {
            error.WriteLine($"cannot read the admin endpoint at {baseUri}: {ex.Message}");
            return AdminCli.Unavailable;
        }

        var unhealthy = false;

        using (cluster)
        using (partitions)
        {
            var c = cluster.RootElement;
            output.WriteLine($"cluster  self {Str(c, "self")}  leader {Str(c, "leader")}");
            foreach (var m in c.GetProperty("members").EnumerateArray())
            {
                output.WriteLine($"  member {Str(m, "address")}  {Str(m, "status")}");
            }
            foreach (var u in c.GetProperty("unreachable").EnumerateArray())
            {
                output.WriteLine($"  UNREACHABLE {u.GetString()}");
                unhealthy = true;
            }

            var rows = partitions.RootElement.EnumerateArray().Select(p => new[]
            {
                Str(p, "consumer"), Str(p, "source"), Str(p, "partition"), Str(p, "node"), Str(p, "state"),
                Num(p, "delivered"), Num(p, "dead_lettered"), Num(p, "errors"), Num(p, "lag"), Str(p, "last_error"),
            }).ToList();
            unhealthy |= rows.Any(r => r[4] is "stalled" or "unreachable");
            output.WriteLine();
            output.WriteLine($"partitions  {rows.Count}");
            Table(output, ["CONSUMER", "SOURCE", "PARTITION", "NODE", "STATE", "DELIVERED", "DEAD", "ERRORS", "LAG", "LAST ERROR"], rows);
        }
        return unhealthy ? AdminCli.Unhealthy : AdminCli.Ok;
    }

    private static string Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "-";

    private static string Num(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64().ToString(CultureInfo.InvariantCulture) : "-";

    private static void Table(TextWriter output, string[] header, List<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => Math.Min(r[i].Length, 60)))).ToArray();
        output.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var row in rows)
        {
            output.WriteLine(string.Join("  ", row.Select((v, i) => (v.Length > 60 ? v[..57] + "..." : v).PadRight(widths[i]))).TrimEnd());
        }
    }
}
