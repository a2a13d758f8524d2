using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;

namespace Centrifugo.Actors.Testing.Kafka;

/// <summary>
/// The kafka-mock console host as a child process (closer to production than the in-process mock and it survives
/// client crashes). Started with --exit-on-stdin-eof so it dies with its parent; killed on dispose.
/// The host is found via KAFKA_MOCK_DLL or the repository's tests/Centrifugo.Actors.KafkaMock/bin output.
/// </summary>
internal sealed class KafkaMockProcess : IAsyncDisposable
{
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(15);
    private readonly Process _process;
    private readonly Channel<string> _stdout;
    private readonly SemaphoreSlim _control = new(1, 1);
    private readonly Queue<string> _stderrTail = new();

    private KafkaMockProcess(Process process, Channel<string> stdout)
    {
        _process = process;
        _stdout = stdout;
    }

    /// <summary>"127.0.0.1:port,..." as printed by the host.</summary>
    public string Bootstrap { get; private set; } = "";

    public bool HasExited => _process.HasExited;

    public static async Task<KafkaMockProcess> StartAsync(
        int brokers = 3,
        IEnumerable<string>? topics = null,
        IReadOnlyList<int>? ports = null,
        int rebalanceDelayMs = 0,
        CancellationToken cancellationToken = default)
    {
        TestLane.RequireInfrastructure("a kafka-mock process");
        var start = new ProcessStartInfo(DotnetPath())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(HostDllPath());
        start.ArgumentList.Add("--brokers");
        start.ArgumentList.Add(brokers.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add("--rebalance-delay-ms");
        start.ArgumentList.Add(rebalanceDelayMs.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add("--exit-on-stdin-eof");
        foreach (var topic in topics ?? [])
        {
            start.ArgumentList.Add("--topic");
            start.ArgumentList.Add(topic);
        }

        if (ports is { Count: > 0 })
        {
            start.ArgumentList.Add("--ports");
            start.ArgumentList.Add(string.Join(',', ports.Select(p => p.ToString(CultureInfo.InvariantCulture))));
        }

        var stdout = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var mock = new KafkaMockProcess(process, stdout);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                stdout.Writer.TryComplete();
            }
            else
            {
                stdout.Writer.TryWrite(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) => mock.KeepStderr(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var first = await mock.ReadLineAsync(cancellationToken);
            if (!first.StartsWith("BOOTSTRAP ", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"kafka-mock printed '{first}' instead of BOOTSTRAP. stderr: {mock.StderrTail()}");
            }

            mock.Bootstrap = first["BOOTSTRAP ".Length..];
            return mock;
        }
        catch
        {
            await mock.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends one control line (e.g. "down 2", "create t 4") and returns the host's answer ("OK" or "ERR ...").</summary>
    public async Task<string> SendAsync(string line, CancellationToken cancellationToken = default)
    {
        await _control.WaitAsync(cancellationToken);
        try
        {
            await _process.StandardInput.WriteLineAsync(line.AsMemory(), cancellationToken);
            await _process.StandardInput.FlushAsync(cancellationToken);
            return await ReadLineAsync(cancellationToken);
        }
        finally
        {
            _control.Release();
        }
    }

    /// <summary>Like <see cref="SendAsync"/> but throws unless the host answered OK.</summary>
    public async Task ControlAsync(string line, CancellationToken cancellationToken = default)
    {
        var answer = await SendAsync(line, cancellationToken);
        if (answer != "OK")
        {
            throw new InvalidOperationException($"kafka-mock answered '{answer}' to '{line}'.");
        }
    }

    /// <summary>Closes the host's stdin (it exits on EOF) and waits for the exit.</summary>
    public async Task CloseStdinAndWaitForExitAsync(CancellationToken cancellationToken)
    {
        _process.StandardInput.Close();
        await _process.WaitForExitAsync(cancellationToken);
    }

    public int ExitCode => _process.ExitCode;

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ReplyTimeout);
        try
        {
            return await _stdout.Reader.ReadAsync(timeout.Token);
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"kafka-mock closed its output. stderr: {StderrTail()}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"kafka-mock did not answer within {ReplyTimeout}. stderr: {StderrTail()}");
        }
    }

    private void KeepStderr(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_stderrTail)
        {
            _stderrTail.Enqueue(line);
            if (_stderrTail.Count > 20)
            {
                _stderrTail.Dequeue();
            }
        }
    }

    private string StderrTail()
    {
        lock (_stderrTail)
        {
            return string.Join('\n', _stderrTail);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(timeout.Token);
            }
        }
        catch (InvalidOperationException)
        {
            // Already exited between the check and the kill.
        }
        finally
        {
            _process.Dispose();
            _control.Dispose();
        }
    }

    private static string DotnetPath() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";

    private static string HostDllPath()
    {
        if (Environment.GetEnvironmentVariable("KAFKA_MOCK_DLL") is { Length: > 0 } explicitPath)
        {
            return explicitPath;
        }

        var configuration = AppContext.BaseDirectory.Contains(
            $"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
            ? "Release"
            : "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var bin = Path.Combine(dir.FullName, "tests", "Centrifugo.Actors.KafkaMock", "bin");
            if (!Directory.Exists(bin))
            {
                continue;
            }

            var preferred = Path.Combine(bin, configuration, "net10.0", "kafka-mock.dll");
            if (File.Exists(preferred))
            {
                return preferred;
            }

            var any = Directory.EnumerateFiles(bin, "kafka-mock.dll", SearchOption.AllDirectories).FirstOrDefault();
            if (any is not null)
            {
                return any;
            }
        }

        throw new FileNotFoundException("kafka-mock.dll not found: build tests/Centrifugo.Actors.KafkaMock or set KAFKA_MOCK_DLL.");
    }
}
