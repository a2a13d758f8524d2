using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;

// Not ".Process": that namespace would shadow System.Diagnostics.Process in every sibling namespace.
namespace Centrifugo.Actors.Testing.Processes;

/// <summary>What a finished <c>centrifugo-actors</c> invocation printed and returned.</summary>
internal sealed record NodeProcessResult(int ExitCode, string Stdout, string Stderr)
{
    public string Output => Stdout + "\n" + Stderr;
}

/// <summary>One partition entity hosted by a node, as shown by its /status/partitions.</summary>
internal sealed record HostedPartition(string EntityId, string State);

/// <summary>
/// The real executable (<c>dotnet centrifugo-actors.dll VERB --config FILE</c>) as a child process: writes the
/// config to a temporary file, captures stdout/stderr line by line, talks to its admin endpoint, and sends
/// SIGTERM/SIGKILL. Every wait is bounded and fails with the tail of the output; a node still running on dispose
/// is killed. The DLL is the one copied next to the test assembly (the Tests project references the Host
/// project), or CENTRIFUGO_ACTORS_DLL.
/// </summary>
internal sealed partial class NodeProcess : IAsyncDisposable
{
    private const int SigTerm = 15;
    private const int SigStop = 19;
    private const int SigCont = 18;
    private static readonly TimeSpan PollStep = TimeSpan.FromMilliseconds(100);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    private readonly Process _process;
    private readonly string _directory;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<string> _stdout = new();
    private readonly ConcurrentQueue<string> _stderr = new();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private NodeProcess(Process process, string directory, string name, int? adminPort)
    {
        _process = process;
        _directory = directory;
        Name = name;
        AdminPort = adminPort;
    }

    /// <summary>Label used in failure messages ("node-a").</summary>
    public string Name { get; }

    public int Pid => _process.Id;

    public int? AdminPort { get; }

    /// <summary>http://127.0.0.1:PORT of the admin endpoint (when the config set one).</summary>
    public string AdminUrl => AdminPort is { } port
        ? $"http://127.0.0.1:{port}"
        : throw new InvalidOperationException($"{Name} has no admin endpoint");

    public bool HasExited => _process.HasExited;

    /// <summary>stdout and stderr lines in arrival order (stderr lines prefixed "[stderr] ").</summary>
    public IReadOnlyList<string> Lines => _lines.ToArray();

    /// <summary>Everything printed so far, one line per line.</summary>
    public string Output => string.Join('\n', _lines);

    public string Stdout => string.Join('\n', _stdout);

    public string Stderr => string.Join('\n', _stderr);

    /// <summary>Starts <c>centrifugo-actors VERB --config FILE</c> with <paramref name="configJson"/> written to FILE.</summary>
    /// <param name="environment">Variables set for the child (null value = removed). Every inherited CENTRIFUGO_* variable is removed
    /// first.</param>
    /// <param name="adminPort">The admin port the config uses, for <see cref="AdminUrl"/>.</param>
    public static NodeProcess Start(
        string verb, string configJson, string name = "node", int? adminPort = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var directory = Directory.CreateTempSubdirectory("centrifugo-actors-node-").FullName;
        var configPath = Path.Combine(directory, "config.json");
        File.WriteAllText(configPath, configJson);
        return StartIn(directory, [verb, "--config", configPath], name, adminPort, environment);
    }

    /// <summary>Starts <c>centrifugo-actors ARGUMENTS</c> as given (no config file is written).</summary>
    public static NodeProcess StartWithArguments(IReadOnlyList<string> arguments, string name = "node") =>
        StartIn(Directory.CreateTempSubdirectory("centrifugo-actors-node-").FullName, arguments, name, null, null);

    private static NodeProcess StartIn(
        string directory, IReadOnlyList<string> arguments, string name, int? adminPort, IReadOnlyDictionary<string, string?>? environment)
    {
        TestLane.RequireInfrastructure("a node process");
        var start = new ProcessStartInfo(DotnetPath())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = directory,
        };
        start.ArgumentList.Add(HostDllPath());
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var inherited in start.Environment.Keys.Where(k => k.StartsWith("CENTRIFUGO_", StringComparison.Ordinal)).ToArray())
        {
            start.Environment.Remove(inherited);
        }

        // Plain lines: no ANSI colour codes in the captured output.
        start.Environment["DOTNET_SYSTEM_CONSOLE_ALLOW_ANSI_COLOR_REDIRECTION"] = "false";
        start.Environment["NO_COLOR"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var node = new NodeProcess(process, directory, name, adminPort);
        process.OutputDataReceived += (_, e) => node.Capture(e.Data, stderr: false);
        process.ErrorDataReceived += (_, e) => node.Capture(e.Data, stderr: true);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Runs a verb to its end (check-config, or a run expected to fail) and returns what it printed.</summary>
    public static async Task<NodeProcessResult> RunToExitAsync(
        string verb, string configJson, TimeSpan timeout, IReadOnlyDictionary<string, string?>? environment = null)
    {
        await using var node = Start(verb, configJson, verb, environment: environment);
        var code = await node.WaitForExitAsync(timeout);
        return new NodeProcessResult(code, node.Stdout, node.Stderr);
    }

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago (the OS hands out ephemeral ports round-robin).</summary>
    public static int FreeTcpPort() => LoopbackPort.Free();

    /// <summary>SIGTERM: what Kubernetes sends first; the node should leave the cluster, drain and exit 0.</summary>
    public void Terminate()
    {
        if (!_process.HasExited && Kill(_process.Id, SigTerm) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (!_process.HasExited)
            {
                throw new InvalidOperationException($"kill(SIGTERM) of {Name} failed: errno {errno}");
            }
        }
    }

    /// <summary>
    /// SIGSTOP: the process freezes at once (no thread runs, sockets stay open, nothing is sent): to the cluster it
    /// looks like a node behind a partitioned network or a long GC pause. <see cref="Continue"/> thaws it.
    /// </summary>
    public void Stop() => Signal(SigStop, "SIGSTOP");

    /// <summary>SIGCONT: a process frozen by <see cref="Stop"/> runs on as if no time had passed.</summary>
    public void Continue() => Signal(SigCont, "SIGCONT");

    /// <summary>True between <see cref="Stop"/> and <see cref="Continue"/>.</summary>
    public bool IsStopped { get; private set; }

    private void Signal(int signal, string name)
    {
        if (_process.HasExited)
        {
            throw new InvalidOperationException($"{name} to {Name}: the process already exited with {_process.ExitCode}.{Tail()}");
        }

        if (Kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({name}) of {Name} failed: errno {Marshal.GetLastPInvokeError()}");
        }

        IsStopped = signal == SigStop;
    }

    /// <summary>SIGKILL: the process dies at once, nothing runs on its way out.</summary>
    public void KillHard()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }

    /// <summary>Waits for the exit and returns the exit code (after the output was read to its end).</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not exit within {timeout}.{Tail()}");
        }

        return _process.ExitCode;
    }

    /// <summary>Polls <paramref name="condition"/> until true; fails early if the process exits, or after
    /// <paramref name="timeout"/>.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} while waiting for: {what}.{Tail()}");
            }

            if (await condition())
            {
                return;
            }

            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"{Name}: timed out after {timeout} waiting for: {what}.{Tail()}");
            }

            await Task.Delay(PollStep);
        }
    }

    /// <summary>Waits until a printed line contains <paramref name="text"/> (ordinal).</summary>
    public Task WaitForOutputAsync(string text, TimeSpan timeout) =>
        WaitUntilAsync(() => Task.FromResult(_lines.Any(l => l.Contains(text, StringComparison.Ordinal))), $"output \"{text}\"", timeout);

    /// <summary>GET on the admin endpoint: status code and body, or null while it does not answer.</summary>
    public async Task<(HttpStatusCode Status, string Body)?> GetAsync(string path)
    {
        try
        {
            using var response = await Http.GetAsync(new Uri(AdminUrl + path));
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>The partitions this node hosts now (/status/partitions); empty while the endpoint is not up.</summary>
    public async Task<IReadOnlyList<HostedPartition>> PartitionsAsync()
    {
        var response = await GetAsync("/status/partitions");
        if (response is not { Status: HttpStatusCode.OK } ok)
        {
            return [];
        }

        using var doc = JsonDocument.Parse(ok.Body);
        return doc.RootElement.EnumerateArray()
            .Select(p => new HostedPartition(p.GetProperty("entity_id").GetString()!, p.GetProperty("state").GetString()!))
            .ToArray();
    }

    /// <summary>Members of the cluster as this node sees them: address → status (/status/cluster).</summary>
    public async Task<IReadOnlyDictionary<string, string>> ClusterMembersAsync()
    {
        var response = await GetAsync("/status/cluster");
        if (response is not { Status: HttpStatusCode.OK } ok)
        {
            return new Dictionary<string, string>();
        }

        using var doc = JsonDocument.Parse(ok.Body);
        return doc.RootElement.GetProperty("members").EnumerateArray()
            .ToDictionary(m => m.GetProperty("address").GetString()!, m => m.GetProperty("status").GetString()!, StringComparer.Ordinal);
    }

    /// <summary>Waits for /health/ready = 200 (member Up, nothing stalled).</summary>
    public Task WaitUntilReadyAsync(TimeSpan timeout) =>
        WaitUntilAsync(async () => await GetAsync("/health/ready") is { Status: HttpStatusCode.OK }, "/health/ready = 200", timeout);

    /// <summary>The last lines printed, for failure messages.</summary>
    public string Tail(int lines = 40)
    {
        var all = _lines.ToArray();
        return $"\n--- last output of {Name} (pid {_process.Id}) ---\n" + string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                KillHard();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(timeout.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // Left to the OS; nothing else to do from a dispose.
        }
        finally
        {
            _process.Dispose();
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
                // A temp directory left behind is harmless.
            }
        }
    }

    private void Capture(string? line, bool stderr)
    {
        if (line is null)
        {
            (stderr ? _stderrClosed : _stdoutClosed).TrySetResult();
            return;
        }

        (stderr ? _stderr : _stdout).Enqueue(line);
        _lines.Enqueue(stderr ? "[stderr] " + line : line);
    }

    private static string DotnetPath() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string HostDllPath()
    {
        if (Environment.GetEnvironmentVariable("CENTRIFUGO_ACTORS_DLL") is { Length: > 0 } explicitPath)
        {
            return explicitPath;
        }

        var next = Path.Combine(AppContext.BaseDirectory, "centrifugo-actors.dll");
        return File.Exists(next)
            ? next
            : throw new FileNotFoundException(
                $"centrifugo-actors.dll not found next to the test assembly ({AppContext.BaseDirectory}); " +
                "build the Tests project or set CENTRIFUGO_ACTORS_DLL.");
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
