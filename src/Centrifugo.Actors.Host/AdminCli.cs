using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Spectre.Console;

namespace Centrifugo.Actors.Host;

/// <summary>
/// Delivery rates for <c>partitions list --watch</c>: messages finished (delivered + dead-lettered) per second since
/// the previous refresh, per partition; "-" on the first refresh and when the partition moved (its counters restart).
/// </summary>
internal sealed class DeliveryRates
{
    private readonly Dictionary<string, (string Node, long Done, DateTimeOffset At)> _last = new(StringComparer.Ordinal);

    public string Next(string entityId, string node, long done, DateTimeOffset at)
    {
        var text = "-";
        if (_last.TryGetValue(entityId, out var previous) && previous.Node == node && done >= previous.Done && at > previous.At)
        {
            text = ((done - previous.Done) / (at - previous.At).TotalSeconds).ToString("0.#", CultureInfo.InvariantCulture);
        }
        _last[entityId] = (node, done, at);
        return text;
    }
}

/// <summary>The admin endpoint could not be read (exit 1).</summary>
internal sealed class AdminUnavailableException(string message) : Exception(message);

/// <summary>The admin endpoint refused the token (exit 4).</summary>
internal sealed class AdminUnauthorizedException(string message) : Exception(message);

/// <summary>The command line cannot be carried out as given (exit 2).</summary>
internal sealed class AdminUsageException(string message) : Exception(message);

/// <summary>HTTP client of a node's admin endpoint; sends the bearer token (CENTRIFUGO_ACTORS_ADMIN_TOKEN) when set.</summary>
internal sealed class AdminClient : IDisposable
{
    public const string UrlVariable = "CENTRIFUGO_ACTORS_ADMIN";
    public const string TokenVariable = "CENTRIFUGO_ACTORS_ADMIN_TOKEN";
    public const string TokenFileVariable = "CENTRIFUGO_ACTORS_ADMIN_TOKEN_FILE";
    public const string DefaultUrl = "http://127.0.0.1:9110";

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };

    public AdminClient(string baseUrl, string? token)
    {
        BaseUrl = baseUrl.TrimEnd('/');
        if (!string.IsNullOrEmpty(token))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        _http.DefaultRequestHeaders.Add(AdminActions.UserHeader, Environment.UserName);
    }

    public string BaseUrl { get; }

    /// <summary>
    /// The bearer token: the file's content (trimmed) when <paramref name="tokenFile"/> or $CENTRIFUGO_ACTORS_ADMIN_TOKEN_FILE
    /// names one, else $CENTRIFUGO_ACTORS_ADMIN_TOKEN. An unreadable file is a usage error naming the file.
    /// </summary>
    public static string? Token(string? tokenFile)
    {
        tokenFile ??= Environment.GetEnvironmentVariable(TokenFileVariable) is { Length: > 0 } fromEnv ? fromEnv : null;
        if (tokenFile is null)
        {
            return Environment.GetEnvironmentVariable(TokenVariable);
        }
        try
        {
            return File.ReadAllText(tokenFile).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new AdminUsageException($"cannot read the token file {tokenFile}: {ex.Message}");
        }
    }

    public static string DefaultAdminUrl() => Environment.GetEnvironmentVariable(UrlVariable) is { Length: > 0 } url ? url : DefaultUrl;

    public async Task<JsonDocument> GetAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _http.GetAsync(new Uri(BaseUrl + path), cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                throw new AdminUnauthorizedException($"{path} at {BaseUrl}: HTTP 401: a valid bearer token is required (--token-file, ${TokenVariable})");
            }
            if (!response.IsSuccessStatusCode)
            {
                throw new AdminUnavailableException($"cannot read the admin endpoint at {BaseUrl}: {path} returned HTTP {(int)response.StatusCode}");
            }
            return JsonDocument.Parse(body);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or UriFormatException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            throw new AdminUnavailableException($"cannot read the admin endpoint at {BaseUrl}: {ex.Message}");
        }
    }

    public async Task<(HttpStatusCode Status, JsonDocument Body)> PostAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _http.PostAsync(new Uri(BaseUrl + path), content: null, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            return (response.StatusCode, JsonDocument.Parse(body.Length == 0 ? "{}" : body));
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or JsonException or UriFormatException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }
            throw new AdminUnavailableException($"cannot reach the admin endpoint at {BaseUrl}: {ex.Message}");
        }
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>
/// The pbm-style verbs: <c>cluster show|leave|down</c>, <c>shards</c>, <c>partitions list|show|pause|resume</c>. Tables by
/// default, <c>--json</c> for scripts. Exit codes: 0 healthy, 1 the endpoint cannot be read (or refused the action),
/// 2 usage (unknown partition, not confirmed), 3 unhealthy (a member unreachable, a partition stalled/unreachable).
/// </summary>
internal static class AdminCli
{
    public const int Ok = 0, Unavailable = 1, Usage = 2, Unhealthy = 3, Unauthorized = 4;

    /// <summary>The exit code of a refused POST: 4 for a missing or wrong token, 2 for a bad request, else 1.</summary>
    private static int Refused(HttpStatusCode status) => status switch
    {
        HttpStatusCode.Unauthorized => Unauthorized,
        HttpStatusCode.NotFound or HttpStatusCode.BadRequest => Usage,
        _ => Unavailable,
    };

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Runs <paramref name="once"/>, or repeats it every <paramref name="interval"/> until cancelled (--watch).</summary>
    public static async Task<int> RunAsync(
        Func<IAnsiConsole, CancellationToken, Task<int>> once, TextWriter output, TextWriter error, bool watch, TimeSpan interval,
        CancellationToken cancellationToken)
    {
        var console = Console(output);
        var code = Ok;
        try
        {
            do
            {
                if (watch)
                {
                    console.Clear(home: true);
                    console.WriteLine($"every {interval.TotalSeconds:0.#} s, {DateTimeOffset.UtcNow:HH:mm:ss} UTC (Ctrl-C to stop)");
                }
                try
                {
                    code = await once(console, cancellationToken);
                }
                catch (AdminUnavailableException ex)
                {
                    await error.WriteLineAsync(ex.Message);
                    code = Unavailable;
                }
                catch (AdminUsageException ex)
                {
                    await error.WriteLineAsync(ex.Message);
                    return Usage;
                }
                catch (AdminUnauthorizedException ex)
                {
                    await error.WriteLineAsync(ex.Message);
                    return Unauthorized;
                }
                if (watch)
                {
                    await Task.Delay(interval, cancellationToken);
                }
            }
            while (watch && !cancellationToken.IsCancellationRequested);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl-C ends --watch; the last result is the exit code.
        }
        return code;
    }

    public static async Task<int> ClusterShowAsync(AdminClient admin, bool json, IAnsiConsole console, CancellationToken cancellationToken)
    {
        using var doc = await admin.GetAsync("/status/cluster", cancellationToken);
        var root = doc.RootElement;
        var unreachable = root.GetProperty("unreachable").EnumerateArray().Select(u => u.GetString()!).ToHashSet(StringComparer.Ordinal);
        if (json)
        {
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(root, Indented));
        }
        else
        {
            var self = Str(root, "self");
            var leader = Str(root, "leader");
            var oldest = Str(root, "oldest");
            var table = NewTable("ADDRESS", "POD", "STATUS", "ROLES", "REACHABLE", "LEADER", "OLDEST", "THIS NODE");
            foreach (var m in root.GetProperty("members").EnumerateArray())
            {
                var address = Str(m, "address");
                table.AddRow(Cells(address, Str(m, "pod"), Str(m, "status"),
                    string.Join(",", m.GetProperty("roles").EnumerateArray().Select(r => r.GetString())),
                    unreachable.Contains(address) ? "NO" : "yes", address == leader ? "*" : "", address == oldest ? "*" : "", address == self ? "*" : ""));
            }
            console.WriteLine($"cluster: {table.Rows.Count} member(s), {unreachable.Count} unreachable, leader {leader}, " +
                              $"oldest {oldest} (the singletons), this node {self}");
            console.Write(table);
        }
        return unreachable.Count > 0 ? Unhealthy : Ok;
    }

    /// <summary><c>log-level LEVEL</c>: the minimum log level of the node behind <c>--admin</c>, until the next change or restart.</summary>
    public static async Task<int> LogLevelAsync(AdminClient admin, string level, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken)
    {
        var (status, body) = await admin.PostAsync($"/log/level?level={Uri.EscapeDataString(level)}", cancellationToken);
        using (body)
        {
            if (status != HttpStatusCode.OK)
            {
                await error.WriteLineAsync($"log-level refused by {admin.BaseUrl}: HTTP {(int)status}: {Str(body.RootElement, "error")}");
                return Refused(status);
            }
            console.WriteLine($"log level of {admin.BaseUrl}: {Str(body.RootElement, "level")} (was {Str(body.RootElement, "previous")})");
        }
        return Ok;
    }

    /// <summary><c>cluster down-unreachable</c>: downs every member the endpoint's node sees as unreachable.</summary>
    public static async Task<int> DownUnreachableAsync(
        AdminClient admin, bool confirmed, TextReader input, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken)
    {
        string[] unreachable;
        using (var doc = await admin.GetAsync("/status/cluster", cancellationToken))
        {
            unreachable = doc.RootElement.GetProperty("unreachable").EnumerateArray().Select(u => u.GetString()!).ToArray();
        }
        if (unreachable.Length == 0)
        {
            console.WriteLine("no unreachable member; nothing done");
            return Ok;
        }
        if (!confirmed)
        {
            console.Write(new Text($"down {string.Join(", ", unreachable)}? They must not come back [y/N] "));
            if ((await input.ReadLineAsync(cancellationToken))?.Trim() is not ("y" or "Y" or "yes"))
            {
                await error.WriteLineAsync("down-unreachable not confirmed; nothing done (use --yes in scripts)");
                return Usage;
            }
        }
        foreach (var address in unreachable)
        {
            var code = await ClusterActionAsync(admin, "down", address, confirmed: true, input, console, error, cancellationToken);
            if (code != Ok)
            {
                return code;
            }
        }
        return Ok;
    }

    public static async Task<int> ClusterActionAsync(
        AdminClient admin, string action, string? address, bool confirmed, TextReader input, IAnsiConsole console, TextWriter error,
        CancellationToken cancellationToken)
    {
        if (!confirmed)
        {
            console.Write(new Text($"{action} {address ?? "this node"}? This cannot be undone [y/N] "));
            var answer = (await input.ReadLineAsync(cancellationToken))?.Trim();
            if (answer is not ("y" or "Y" or "yes"))
            {
                await error.WriteLineAsync($"{action} not confirmed; nothing done (use --yes in scripts)");
                return Usage;
            }
        }

        var query = address is null ? "" : "?address=" + Uri.EscapeDataString(address);
        var (status, body) = await admin.PostAsync($"/cluster/{action}{query}", cancellationToken);
        using (body)
        {
            if (status != HttpStatusCode.Accepted)
            {
                await error.WriteLineAsync($"{action} refused by {admin.BaseUrl}: HTTP {(int)status}: {Str(body.RootElement, "error")}");
                return Refused(status);
            }
            console.WriteLine($"{action} {Str(body.RootElement, "address")}: accepted");
        }
        return Ok;
    }

    public static async Task<int> ShardsAsync(AdminClient admin, bool json, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken)
    {
        using var doc = await admin.GetAsync("/status/shards", cancellationToken);
        var nodes = doc.RootElement.GetProperty("nodes").EnumerateArray().ToArray();
        // Akka answers an empty map when the regions did not reply within its timeout: that is not "no shards".
        var code = nodes.Length == 0 ? Unhealthy
            : nodes.Any(n => n.GetProperty("failed_shards").GetArrayLength() > 0) ? Unhealthy : Ok;
        if (nodes.Length == 0)
        {
            await error.WriteLineAsync($"shards: no shard region answered {admin.BaseUrl} in time (the cluster may be forming or a member unreachable; see `cluster show`)");
        }
        if (json)
        {
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(doc.RootElement, Indented));
            return code;
        }
        if (nodes.Length == 0)
        {
            return code;
        }

        var table = NewTable("NODE", "SHARDS", "PARTITIONS", "FAILED SHARDS");
        foreach (var n in nodes)
        {
            table.AddRow(Cells(Str(n, "node"), Num(n, "shards"), Num(n, "partitions"),
                string.Join(",", n.GetProperty("failed_shards").EnumerateArray().Select(f => f.GetString()))));
        }
        console.WriteLine($"shards: {nodes.Sum(n => n.GetProperty("shards").GetInt32())} on {nodes.Length} node(s), " +
                          $"{nodes.Sum(n => n.GetProperty("partitions").GetInt32())} partition(s) running");
        console.Write(table);
        return code;
    }

    public static async Task<int> PartitionsListAsync(
        AdminClient admin, string? consumer, string? state, bool json, IAnsiConsole console, CancellationToken cancellationToken,
        DeliveryRates? rates = null)
    {
        using var doc = await admin.GetAsync("/status/partitions?scope=cluster", cancellationToken);
        var rows = doc.RootElement.EnumerateArray()
            .Where(p => consumer is null || Str(p, "consumer") == consumer)
            .Where(p => state is null || string.Equals(Str(p, "state"), state, StringComparison.OrdinalIgnoreCase))
            .ToArray();
        var unhealthy = rows.Any(p => Str(p, "state") is "stalled" or "unreachable");
        if (json)
        {
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(rows, Indented));
            return unhealthy ? Unhealthy : Ok;
        }

        var table = NewTable("PARTITION", "NODE", "STATE", "POSITION", "BACKLOG/LAG", "DELIVERED", "DEAD", "ERRORS", "RATE/S", "LAST ERROR");
        var now = DateTimeOffset.UtcNow;
        foreach (var p in rows)
        {
            var done = (p.TryGetProperty("delivered", out var d) && d.ValueKind == JsonValueKind.Number ? d.GetInt64() : 0)
                       + (p.TryGetProperty("dead_lettered", out var x) && x.ValueKind == JsonValueKind.Number ? x.GetInt64() : 0);
            table.AddRow(Cells(Str(p, "entity_id"), Str(p, "node"), Str(p, "state"), Num(p, "position"),
                Str(p, "source") == "kafka" ? Num(p, "lag") : Num(p, "backlog"), Num(p, "delivered"), Num(p, "dead_lettered"),
                Num(p, "errors"), rates?.Next(Str(p, "entity_id"), Str(p, "node"), done, now) ?? "-", Trim(Str(p, "last_error"), 60)));
        }
        console.WriteLine($"partitions: {rows.Length}" + (unhealthy ? $" ({rows.Count(p => Str(p, "state") is "stalled" or "unreachable")} stalled or unreachable)" : ""));
        console.Write(table);
        return unhealthy ? Unhealthy : Ok;
    }

    public static async Task<int> PartitionsShowAsync(
        AdminClient admin, string id, bool json, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken)
    {
        using var doc = await admin.GetAsync("/status/partitions?scope=cluster", cancellationToken);
        var found = doc.RootElement.EnumerateArray().Where(p => Str(p, "entity_id") == id).ToArray();
        if (found.Length == 0)
        {
            await error.WriteLineAsync($"no partition {id} in the cluster (ids look like pg:<consumer>:<partition> or kafka:<consumer>:<topic>:<partition>; see `partitions list`)");
            return Usage;
        }

        var p = found[0];
        if (json)
        {
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(p, Indented));
        }
        else
        {
            var grid = new Grid().AddColumn().AddColumn();
            foreach (var property in p.EnumerateObject())
            {
                grid.AddRow(new Text(property.Name), new Text(property.Value.ValueKind switch
                {
                    JsonValueKind.Null => "-",
                    JsonValueKind.String => property.Value.GetString()!,
                    _ => property.Value.GetRawText(),
                }));
            }
            console.Write(grid);
        }
        return Str(p, "state") is "stalled" or "unreachable" ? Unhealthy : Ok;
    }

    /// <summary>
    /// <c>partitions pause|resume ID [--json]</c>: POSTs to the admin endpoint, which returns once the owning entity
    /// confirmed. Exit 0 when in force (pause: its batch in flight finished and nothing new starts), 3 when recorded
    /// cluster-wide but not confirmed in time, 1 when refused (token) or not recorded by a majority, 2 for an unknown
    /// partition.
    /// </summary>
    public static async Task<int> PartitionPauseAsync(
        AdminClient admin, string id, bool pause, bool json, IAnsiConsole console, TextWriter error, CancellationToken cancellationToken)
    {
        var action = pause ? "pause" : "resume";
        var (status, body) = await admin.PostAsync($"/partitions/{action}?id={Uri.EscapeDataString(id)}", cancellationToken);
        using (body)
        {
            if (json)
            {
                console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(body.RootElement, Indented));
            }
            switch (status)
            {
                case HttpStatusCode.OK:
                    if (!json)
                    {
                        console.WriteLine(pause
                            ? $"pause {id}: in force on {Str(body.RootElement, "node")} (its in-flight batch finished, nothing new starts)"
                            : $"resume {id}: in force on {Str(body.RootElement, "node")}");
                    }
                    return Ok;
                case HttpStatusCode.Accepted:
                    await error.WriteLineAsync($"{action} {id}: {Str(body.RootElement, "error")}");
                    return Unhealthy;
                default:
                    await error.WriteLineAsync($"{action} {id}: refused by {admin.BaseUrl}: HTTP {(int)status}: {Str(body.RootElement, "error")}");
                    return Refused(status);
            }
        }
    }

    /// <summary><c>dead-letters list [--consumer NAME] [--limit N]</c>: the oldest dead letters per postgresql consumer.</summary>
    public static async Task<int> DeadLettersListAsync(
        AdminClient admin, string? consumer, int limit, bool json, IAnsiConsole console, CancellationToken cancellationToken)
    {
        var query = $"/dead-letters?limit={limit.ToString(CultureInfo.InvariantCulture)}" + (consumer is null ? "" : "&consumer=" + Uri.EscapeDataString(consumer));
        using var doc = await admin.GetAsync(query, cancellationToken);
        var consumers = doc.RootElement.GetProperty("consumers").EnumerateArray().ToArray();
        if (json)
        {
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(doc.RootElement, Indented));
            return Ok;
        }
        foreach (var c in consumers)
        {
            var items = c.GetProperty("items").EnumerateArray().ToArray();
            console.WriteLine($"{Str(c, "consumer")} ({Str(c, "source")}, {Str(c, "table")}): {Num(c, "total")} dead letter(s), showing {items.Length}");
            var table = NewTable("ID", "PARTITION", "METHOD", "FAILED AT", "REASON", "PAYLOAD");
            foreach (var item in items)
            {
                table.AddRow(Cells(Num(item, "id"), Num(item, "partition"), Str(item, "method"), Str(item, "failed_at"),
                    Trim(Str(item, "reason"), 50), Trim(Str(item, "payload"), 60)));
            }
            console.Write(table);
        }
        return Ok;
    }

    /// <summary>
    /// <c>dead-letters replay --consumer NAME (--ids 1,2,… | --all)</c>: dead letters back into the outbox (same
    /// partition, id order, new ids), each at most once. Exit 0 done, 1 refused/unavailable, 2 usage.
    /// </summary>
    public static async Task<int> DeadLettersReplayAsync(
        AdminClient admin, string consumer, IReadOnlyList<long> ids, bool all, bool json, IAnsiConsole console, TextWriter error,
        CancellationToken cancellationToken)
    {
        if (all == (ids.Count > 0))
        {
            await error.WriteLineAsync("dead-letters replay needs exactly one of --ids and --all");
            return Usage;
        }
        var path = $"/dead-letters/replay?consumer={Uri.EscapeDataString(consumer)}" +
                   (all ? "&all=true" : "&ids=" + string.Join(',', ids.Select(i => i.ToString(CultureInfo.InvariantCulture))));
        var replayed = 0L;
        var notFound = new List<long>();
        var results = new List<JsonElement>();
        bool more;
        do
        {
            var (status, body) = await admin.PostAsync(path, cancellationToken);
            using (body)
            {
                if (status != HttpStatusCode.OK)
                {
                    await error.WriteLineAsync($"dead-letters replay refused by {admin.BaseUrl}: HTTP {(int)status}: {Str(body.RootElement, "error")}");
                    return Refused(status);
                }
                var root = body.RootElement;
                results.Add(root.Clone());
                replayed += root.GetProperty("replayed").GetInt64();
                notFound.AddRange(root.GetProperty("not_found").EnumerateArray().Select(e => e.GetInt64()));
                more = root.GetProperty("more").GetBoolean();
            }
        }
        while (more);

        if (json)
        {
            console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(results.Count == 1 ? (object)results[0] : results, Indented));
        }
        else
        {
            console.WriteLine($"replayed {replayed} dead letter(s) of {consumer}" +
                              (notFound.Count > 0 ? $"; not in the dead-letter table (already replayed?): {string.Join(",", notFound)}" : ""));
        }
        return Ok;
    }

    /// <summary>A console on <paramref name="output"/>: colours only on a terminal, wide enough for addresses.</summary>
    public static IAnsiConsole Console(TextWriter output)
    {
        var terminal = ReferenceEquals(output, System.Console.Out) && !System.Console.IsOutputRedirected
                       && Environment.GetEnvironmentVariable("NO_COLOR") is null;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        if (!terminal)
        {
            console.Profile.Width = 240;
        }
        return console;
    }

    private static Table NewTable(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (var c in columns)
        {
            table.AddColumn(new TableColumn(c).NoWrap());
        }
        return table;
    }

    private static Text[] Cells(params string[] values) => values.Select(v => new Text(v)).ToArray();

    private static string Trim(string value, int max) => value.Length > max ? value[..(max - 3)] + "..." : value;

    private static string Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "-";

    private static string Num(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64().ToString(CultureInfo.InvariantCulture) : "-";
}
