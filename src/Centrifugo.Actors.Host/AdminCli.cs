using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Centrifugo.Actors.Operations;
using Centrifugo.Actors.Partitions;
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

    /// <summary>GET <paramref name="path"/> (and the request's query), read as <paramref name="answer"/>; 401 and any other failure
    /// throw.</summary>
    public async Task<T> GetAsync<T>(string path, IAdminQuery? request, JsonTypeInfo<T> answer, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _http.GetAsync(new Uri(BaseUrl + path + request?.Query), cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.StatusCode == HttpStatusCode.Unauthorized)
            {
                throw new AdminUnauthorizedException(
                    $"{path} at {BaseUrl}: HTTP 401: a valid bearer token is required (--token-file, ${TokenVariable})");
            }
            if (!response.IsSuccessStatusCode)
            {
                throw new AdminUnavailableException(
                    $"cannot read the admin endpoint at {BaseUrl}: {path} returned HTTP {(int)response.StatusCode}");
            }
            return JsonSerializer.Deserialize(body, answer) ?? throw new JsonException($"{path} answered null");
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

    /// <summary>POST <paramref name="path"/> with the request's query; the answer is read by its status
    /// (<see cref="AdminReply"/>).</summary>
    public async Task<AdminReply> PostAsync(string path, IAdminQuery request, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _http.PostAsync(new Uri(BaseUrl + path + request.Query), content: null, cancellationToken);
            return new AdminReply(response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken), BaseUrl);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or UriFormatException)
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

/// <summary>The answer to a POST: its status says which record the body is (an <see cref="AdminError"/> for a refusal).</summary>
internal sealed record AdminReply(HttpStatusCode Status, string Body, string BaseUrl)
{
    public T Read<T>(JsonTypeInfo<T> answer)
    {
        try
        {
            return JsonSerializer.Deserialize(Body.Length == 0 ? "{}" : Body, answer) ?? throw new JsonException("the answer is null");
        }
        catch (JsonException ex)
        {
            throw new AdminUnavailableException($"cannot reach the admin endpoint at {BaseUrl}: {ex.Message}");
        }
    }

    /// <summary>The refusal's message; "-" when the body named none (405).</summary>
    public string Error => Read(AdminJson.Default.AdminError).Error ?? "-";
}

/// <summary>
/// What a verb works with: the node's admin endpoint, the console it prints to, where errors go, where a confirmation
/// is read from, and the token that ends the command (Ctrl-C).
/// </summary>
internal sealed record VerbContext(
    AdminClient Admin, IAnsiConsole Console, TextWriter Error, TextReader Input, CancellationToken CancellationToken)
{
    public static VerbContext Create(
        AdminClient admin, TextWriter output, TextWriter error, TextReader? input = null, CancellationToken cancellationToken = default) =>
        new(admin, AdminCli.Console(output), error, input ?? TextReader.Null, cancellationToken);

    /// <summary>GET of a status route.</summary>
    public Task<T> GetAsync<T>(string path, JsonTypeInfo<T> answer, IAdminQuery? request = null) =>
        Admin.GetAsync(path, request, answer, CancellationToken);

    public Task<AdminReply> PostAsync(string path, IAdminQuery request) => Admin.PostAsync(path, request, CancellationToken);

    /// <summary><c>--json</c>: the endpoint's JSON, indented.</summary>
    public void WriteJson<T>(T value, JsonTypeInfo<T> type) => Console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(value, type));

    /// <summary>Asks <paramref name="question"/> on the console; true for y/Y/yes on <see cref="Input"/>.</summary>
    public async Task<bool> ConfirmAsync(string question)
    {
        Console.Write(new Text(question + " [y/N] "));
        return (await Input.ReadLineAsync(CancellationToken))?.Trim() is "y" or "Y" or "yes";
    }
}

/// <summary>
/// The pbm-style verbs: <c>cluster show|leave|down</c>, <c>shards</c>, <c>partitions list|show|pause|resume</c>,
/// <c>dead-letters list|replay</c>, <c>log-level</c>, and <c>status</c> (cluster and partitions on one screen). Tables by
/// default, <c>--json</c> for scripts. Exit codes: 0 healthy, 1 the endpoint cannot be read (or refused the action),
/// 2 usage (unknown partition, not confirmed), 3 unhealthy (a member unreachable, a partition stalled/unreachable),
/// 4 the token is missing or wrong.
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

    /// <summary>Runs <paramref name="once"/>, or repeats it every <paramref name="watch"/> until cancelled (--watch).</summary>
    public static async Task<int> RunAsync(VerbContext verb, Func<VerbContext, Task<int>> once, TimeSpan? watch = null)
    {
        var code = Ok;
        try
        {
            do
            {
                if (watch is { } interval)
                {
                    verb.Console.Clear(home: true);
                    verb.Console.WriteLine($"every {interval.TotalSeconds:0.#} s, {DateTimeOffset.UtcNow:HH:mm:ss} UTC (Ctrl-C to stop)");
                }
                try
                {
                    code = await once(verb);
                }
                catch (AdminUnavailableException ex)
                {
                    await verb.Error.WriteLineAsync(ex.Message);
                    code = Unavailable;
                }
                catch (AdminUsageException ex)
                {
                    await verb.Error.WriteLineAsync(ex.Message);
                    return Usage;
                }
                catch (AdminUnauthorizedException ex)
                {
                    await verb.Error.WriteLineAsync(ex.Message);
                    return Unauthorized;
                }
                if (watch is { } delay)
                {
                    await Task.Delay(delay, verb.CancellationToken);
                }
            }
            while (watch is not null && !verb.CancellationToken.IsCancellationRequested);
        }
        catch (OperationCanceledException) when (verb.CancellationToken.IsCancellationRequested)
        {
            // Ctrl-C ends --watch; the last result is the exit code.
        }
        return code;
    }

    /// <summary><c>status</c>: <c>cluster show</c> and <c>partitions list</c> on one screen; unhealthy if either is.</summary>
    public static async Task<int> StatusAsync(VerbContext verb)
    {
        var cluster = await ClusterShowAsync(verb, json: false);
        verb.Console.WriteLine();
        var partitions = await PartitionsListAsync(verb, consumer: null, state: null, json: false);
        return Math.Max(cluster, partitions);
    }

    public static async Task<int> ClusterShowAsync(VerbContext verb, bool json)
    {
        var cluster = await verb.GetAsync(AdminPaths.Cluster, AdminJson.Default.ClusterInfo);
        var unreachable = cluster.Unreachable.ToHashSet(StringComparer.Ordinal);
        if (json)
        {
            verb.WriteJson(cluster, AdminJson.Default.ClusterInfo);
        }
        else
        {
            var table = NewTable("ADDRESS", "POD", "STATUS", "ROLES", "REACHABLE", "LEADER", "OLDEST", "THIS NODE");
            foreach (var m in cluster.Members)
            {
                table.AddRow(Cells(m.Address, m.Pod ?? "-", m.Status, string.Join(",", m.Roles),
                    unreachable.Contains(m.Address) ? "NO" : "yes", m.Address == cluster.Leader ? "*" : "",
                    m.Address == cluster.Oldest ? "*" : "",
                    m.Address == cluster.Self ? "*" : ""));
            }
            verb.Console.WriteLine(
                $"cluster: {table.Rows.Count} member(s), {unreachable.Count} unreachable, leader {cluster.Leader ?? "-"}, " +
                                   $"oldest {cluster.Oldest ?? "-"} (the singletons), this node {cluster.Self}");
            verb.Console.Write(table);
        }
        return unreachable.Count > 0 ? Unhealthy : Ok;
    }

    /// <summary><c>log-level LEVEL</c>: the minimum log level of the node behind <c>--admin</c>, until the next change or
    /// restart.</summary>
    public static async Task<int> LogLevelAsync(VerbContext verb, string level)
    {
        var reply = await verb.PostAsync(AdminPaths.LogLevel, new LogLevelRequest(level));
        if (reply.Status != HttpStatusCode.OK)
        {
            await verb.Error.WriteLineAsync($"log-level refused by {verb.Admin.BaseUrl}: HTTP {(int)reply.Status}: {reply.Error}");
            return Refused(reply.Status);
        }
        var result = reply.Read(AdminJson.Default.LogLevelResult);
        verb.Console.WriteLine($"log level of {verb.Admin.BaseUrl}: {result.Level} (was {result.Previous})");
        return Ok;
    }

    /// <summary><c>cluster down-unreachable</c>: downs every member the endpoint's node sees as unreachable.</summary>
    public static async Task<int> DownUnreachableAsync(VerbContext verb, bool confirmed)
    {
        var unreachable = (await verb.GetAsync(AdminPaths.Cluster, AdminJson.Default.ClusterInfo)).Unreachable;
        if (unreachable.Count == 0)
        {
            verb.Console.WriteLine("no unreachable member; nothing done");
            return Ok;
        }
        if (!confirmed && !await verb.ConfirmAsync($"down {string.Join(", ", unreachable)}? They must not come back"))
        {
            await verb.Error.WriteLineAsync("down-unreachable not confirmed; nothing done (use --yes in scripts)");
            return Usage;
        }
        foreach (var address in unreachable)
        {
            var code = await ClusterActionAsync(verb, "down", address, confirmed: true);
            if (code != Ok)
            {
                return code;
            }
        }
        return Ok;
    }

    /// <summary><c>cluster leave [ADDRESS]</c> (<paramref name="action"/> "leave") and <c>cluster down ADDRESS</c> ("down").</summary>
    public static async Task<int> ClusterActionAsync(VerbContext verb, string action, string? address, bool confirmed)
    {
        var path = action switch
        {
            "leave" => AdminPaths.Leave,
            "down" => AdminPaths.Down,
            _ => throw new ArgumentOutOfRangeException(nameof(action), action, "leave or down"),
        };
        if (!confirmed && !await verb.ConfirmAsync($"{action} {address ?? "this node"}? This cannot be undone"))
        {
            await verb.Error.WriteLineAsync($"{action} not confirmed; nothing done (use --yes in scripts)");
            return Usage;
        }

        var reply = await verb.PostAsync(path, new MemberRequest(address));
        if (reply.Status != HttpStatusCode.Accepted)
        {
            await verb.Error.WriteLineAsync($"{action} refused by {verb.Admin.BaseUrl}: HTTP {(int)reply.Status}: {reply.Error}");
            return Refused(reply.Status);
        }
        verb.Console.WriteLine($"{action} {reply.Read(AdminJson.Default.MemberActionResult).Address}: accepted");
        return Ok;
    }

    public static async Task<int> ShardsAsync(VerbContext verb, bool json)
    {
        var nodes = (await verb.GetAsync(AdminPaths.Shards, AdminJson.Default.ShardsInfo)).Nodes;
        // Akka answers an empty map when the regions did not reply within its timeout: that is not "no shards".
        var code = nodes.Count == 0 || nodes.Any(n => n.FailedShards.Count > 0) ? Unhealthy : Ok;
        if (nodes.Count == 0)
        {
            await verb.Error.WriteLineAsync($"shards: no shard region answered {verb.Admin.BaseUrl} in time " +
                "(the cluster may be forming or a member unreachable; see `cluster show`)");
        }
        if (json)
        {
            verb.WriteJson(new ShardsInfo(nodes), AdminJson.Default.ShardsInfo);
            return code;
        }
        if (nodes.Count == 0)
        {
            return code;
        }

        var table = NewTable("NODE", "SHARDS", "PARTITIONS", "FAILED SHARDS");
        foreach (var n in nodes)
        {
            table.AddRow(Cells(n.Node, Num(n.Shards), Num(n.Partitions), string.Join(",", n.FailedShards)));
        }
        verb.Console.WriteLine(
            $"shards: {nodes.Sum(n => n.Shards)} on {nodes.Count} node(s), {nodes.Sum(n => n.Partitions)} partition(s) running");
        verb.Console.Write(table);
        return code;
    }

    private static bool IsUnhealthy(PartitionInfo p) => p.State is PartitionState.Stalled or PartitionState.Unreachable;

    public static async Task<int> PartitionsListAsync(
        VerbContext verb, string? consumer, string? state, bool json, DeliveryRates? rates = null)
    {
        var rows = (await verb.GetAsync(AdminPaths.Partitions, AdminJson.Default.Partitions, PartitionsRequest.ClusterWide))
            .Where(p => consumer is null || p.Consumer == consumer)
            .Where(p => state is null || string.Equals(AdminJson.Name(p.State), state, StringComparison.OrdinalIgnoreCase))
            .ToArray();
        var unhealthy = rows.Count(IsUnhealthy);
        if (json)
        {
            verb.WriteJson(rows, AdminJson.Default.Partitions);
            return unhealthy > 0 ? Unhealthy : Ok;
        }

        var table = NewTable(
            "PARTITION", "NODE", "STATE", "POSITION", "BACKLOG/LAG", "DELIVERED", "DEAD", "ERRORS", "RATE/S", "LAST ERROR");
        var now = DateTimeOffset.UtcNow;
        foreach (var p in rows)
        {
            table.AddRow(Cells(p.EntityId, p.Node, AdminJson.Name(p.State), Num(p.Position),
                Num(p.Source == PartitionSource.Kafka ? p.Lag : p.Backlog), Num(p.Delivered), Num(p.DeadLettered),
                Num(p.Errors), rates?.Next(p.EntityId, p.Node, p.Delivered + p.DeadLettered, now) ?? "-", Trim(p.LastError ?? "-", 60)));
        }
        verb.Console.WriteLine($"partitions: {rows.Length}" + (unhealthy > 0 ? $" ({unhealthy} stalled or unreachable)" : ""));
        verb.Console.Write(table);
        return unhealthy > 0 ? Unhealthy : Ok;
    }

    public static async Task<int> PartitionsShowAsync(VerbContext verb, string id, bool json)
    {
        var partitions = await verb.GetAsync(AdminPaths.Partitions, AdminJson.Default.Partitions, PartitionsRequest.ClusterWide);
        if (partitions.FirstOrDefault(p => p.EntityId == id) is not { } p)
        {
            await verb.Error.WriteLineAsync($"no partition {id} in the cluster " +
                "(ids look like pg:<consumer>:<partition> or kafka:<consumer>:<topic>:<partition>; see `partitions list`)");
            return Usage;
        }

        if (json)
        {
            verb.WriteJson(p, AdminJson.Default.PartitionInfo);
        }
        else
        {
            // Every field the endpoint writes, by its wire name.
            var grid = new Grid().AddColumn().AddColumn();
            foreach (var property in JsonSerializer.SerializeToElement(p, AdminJson.Default.PartitionInfo).EnumerateObject())
            {
                grid.AddRow(new Text(property.Name), new Text(property.Value.ValueKind switch
                {
                    JsonValueKind.Null => "-",
                    JsonValueKind.String => property.Value.GetString()!,
                    _ => property.Value.GetRawText(),
                }));
            }
            verb.Console.Write(grid);
        }
        return IsUnhealthy(p) ? Unhealthy : Ok;
    }

    /// <summary>
    /// <c>partitions pause|resume ID [--json]</c>: POSTs to the admin endpoint, which returns once the owning entity
    /// confirmed. Exit 0 when in force (pause: its batch in flight finished and nothing new starts), 3 when recorded
    /// cluster-wide but not confirmed in time, 1 when refused (token) or not recorded by a majority, 2 for an unknown
    /// partition.
    /// </summary>
    public static async Task<int> PartitionPauseAsync(VerbContext verb, string id, bool pause, bool json)
    {
        var action = pause ? "pause" : "resume";
        var reply = await verb.PostAsync(pause ? AdminPaths.Pause : AdminPaths.Resume, new PartitionRequest(id));
        switch (reply.Status)
        {
            case HttpStatusCode.OK:
                var inForce = reply.Read(AdminJson.Default.PauseInForce);
                if (json)
                {
                    verb.WriteJson(inForce, AdminJson.Default.PauseInForce);
                }
                else
                {
                    verb.Console.WriteLine(pause
                        ? $"pause {id}: in force on {inForce.Node ?? "-"} (its in-flight batch finished, nothing new starts)"
                        : $"resume {id}: in force on {inForce.Node ?? "-"}");
                }
                return Ok;
            case HttpStatusCode.Accepted:
                var pending = reply.Read(AdminJson.Default.PauseNotInForce);
                if (json)
                {
                    verb.WriteJson(pending, AdminJson.Default.PauseNotInForce);
                }
                await verb.Error.WriteLineAsync($"{action} {id}: {pending.Error}");
                return Unhealthy;
            case HttpStatusCode.ServiceUnavailable when json:
                verb.WriteJson(reply.Read(AdminJson.Default.PauseNotInForce), AdminJson.Default.PauseNotInForce);
                break;
            default:
                if (json)
                {
                    verb.WriteJson(reply.Read(AdminJson.Default.AdminError), AdminJson.Default.AdminError);
                }
                break;
        }
        await verb.Error.WriteLineAsync($"{action} {id}: refused by {verb.Admin.BaseUrl}: HTTP {(int)reply.Status}: {reply.Error}");
        return Refused(reply.Status);
    }

    /// <summary><c>dead-letters list [--consumer NAME] [--limit N]</c>: the oldest dead letters per consumer.</summary>
    public static async Task<int> DeadLettersListAsync(VerbContext verb, string? consumer, int limit, bool json)
    {
        var info = await verb.GetAsync(AdminPaths.DeadLetters, AdminJson.Default.DeadLettersInfo, DeadLettersRequest.Of(consumer, limit));
        if (json)
        {
            verb.WriteJson(info, AdminJson.Default.DeadLettersInfo);
            return Ok;
        }
        foreach (var set in info.Consumers)
        {
            var (count, table) = set switch
            {
                OutboxDeadLetterSet outbox => (outbox.Items.Count, OutboxTable(outbox.Items)),
                KafkaDeadLetterSet kafka => (kafka.Items.Count, KafkaTable(kafka.Items)),
                _ => throw new InvalidOperationException(set.GetType().Name),
            };
            verb.Console.WriteLine(
                $"{set.Consumer} ({AdminJson.Name(set.Source)}, {set.Table}): {set.Total} dead letter(s), showing {count}");
            verb.Console.Write(table);
        }
        return Ok;
    }

    private static Table OutboxTable(IEnumerable<DeadLetterItem> items)
    {
        var table = NewTable("ID", "PARTITION", "METHOD", "FAILED AT", "REASON", "PAYLOAD");
        foreach (var item in items)
        {
            table.AddRow(Cells(
                Num(item.Id), Num(item.Partition), item.Method, Time(item.FailedAt), Trim(item.Reason ?? "-", 50), Trim(item.Payload, 60)));
        }
        return table;
    }

    /// <summary>Kafka dead letters: where each is in the dead-letter topic, and the source record it was.</summary>
    private static Table KafkaTable(IEnumerable<KafkaDeadLetterItem> items)
    {
        var table = NewTable("TOPIC/PARTITION", "OFFSET", "SOURCE", "REASON", "REPLAYED");
        foreach (var item in items)
        {
            var source = item.SourceTopic is null ? "-" : $"{item.SourceTopic}/{Num(item.SourcePartition)}@{Num(item.SourceOffset)}";
            table.AddRow(Cells($"{item.DeadLetterTopic}/{Num(item.DeadLetterPartition)}", Num(item.DeadLetterOffset), source,
                Trim(item.Reason ?? "-", 50), item.Replayed ? "yes" : "no"));
        }
        return table;
    }

    /// <summary>
    /// <c>dead-letters replay --consumer NAME (--ids 1,2,… | --all)</c>: dead letters back into the outbox (same
    /// partition, id order, new ids), each at most once. Exit 0 done, 1 refused/unavailable, 2 usage.
    /// </summary>
    public static async Task<int> DeadLettersReplayAsync(VerbContext verb, string consumer, IReadOnlyList<long> ids, bool all, bool json)
    {
        if (all == (ids.Count > 0))
        {
            await verb.Error.WriteLineAsync("dead-letters replay needs exactly one of --ids and --all");
            return Usage;
        }
        var request = ReplayRequest.Of(consumer, ids, all);
        var results = new List<ReplayResponse>();
        do
        {
            var reply = await verb.PostAsync(AdminPaths.Replay, request);
            if (reply.Status != HttpStatusCode.OK)
            {
                await verb.Error.WriteLineAsync(
                    $"dead-letters replay refused by {verb.Admin.BaseUrl}: HTTP {(int)reply.Status}: {reply.Error}");
                return Refused(reply.Status);
            }
            results.Add(reply.Read(AdminJson.Default.ReplayResponse));
        }
        while (results[^1].More);

        if (json)
        {
            if (results.Count == 1)
            {
                verb.WriteJson(results[0], AdminJson.Default.ReplayResponse);
            }
            else
            {
                verb.WriteJson(results, AdminJson.Default.Replays);
            }
        }
        else
        {
            var notFound = results.SelectMany(r => r.NotFound).ToArray();
            verb.Console.WriteLine($"replayed {results.Sum(r => (long)r.Replayed)} dead letter(s) of {consumer}" +
                                   (notFound.Length > 0
                                       ? $"; not in the dead-letter table (already replayed?): {string.Join(",", notFound)}" : ""));
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

    private static string Num(long? value) => value?.ToString(CultureInfo.InvariantCulture) ?? "-";

    /// <summary>A time as the endpoint writes it (ISO 8601, the fraction without trailing zeros).</summary>
    private static string Time(DateTimeOffset value) =>
        value.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss.FFFFFFFzzz", CultureInfo.InvariantCulture);
}
