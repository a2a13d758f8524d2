using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Centrifugo.Actors.Testing.Kafka;

/// <summary>
/// A TLS-terminating stunnel in front of plaintext listeners (the Kafka mock has no TLS), on 127.0.0.1 only: one
/// accept port per target port. Generates, in its own temp dir, a CA, a server certificate for IP 127.0.0.1 signed by
/// it, an unrelated "wrong" CA and a client certificate signed by the CA. With <c>requireClientCertificate</c> stunnel
/// demands a client certificate chaining to the CA (mutual TLS). Needs stunnel4 and openssl: run scripts/ensure-deps.sh.
/// </summary>
internal sealed class StunnelTlsProxy : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private StunnelTlsProxy(string directory, Process process, IReadOnlyList<int> ports)
    {
        Directory = directory;
        _process = process;
        Ports = ports;
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Directory { get; }

    /// <summary>TLS accept ports, in the order of the target ports.</summary>
    public IReadOnlyList<int> Ports { get; }

    public string CaPath => Path.Combine(Directory, "ca.pem");

    public string WrongCaPath => Path.Combine(Directory, "wrong-ca.pem");

    public string ClientCertPath => Path.Combine(Directory, "client.pem");

    public string ClientKeyPath => Path.Combine(Directory, "client.key");

    /// <summary>What stunnel printed so far (handshake failures show up here).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static StunnelTlsProxy Start(IReadOnlyList<int> targetPorts, bool requireClientCertificate = false)
    {
        TestLane.RequireInfrastructure("stunnel");
        ArgumentNullException.ThrowIfNull(targetPorts);
        var stunnel = FindOnPath("stunnel4") ?? FindOnPath("stunnel")
            ?? throw new InvalidOperationException("stunnel4 is not installed; the Kafka TLS tests need it. Run scripts/ensure-deps.sh.");
        var openssl = FindOnPath("openssl")
            ?? throw new InvalidOperationException("openssl is not installed; the Kafka TLS tests need it. Run scripts/ensure-deps.sh.");

        var dir = Path.Combine(Path.GetTempPath(), "stunnel-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        try
        {
            GenerateCertificates(openssl, dir);
            var ports = targetPorts.Select(_ => FreePort()).ToArray();
            var config = new StringBuilder()
                .AppendLine("foreground = yes")
                .AppendLine(CultureInfo.InvariantCulture, $"pid = {Path.Combine(dir, "stunnel.pid")}")
                .AppendLine("debug = 5")
                .AppendLine("syslog = no");
            for (var i = 0; i < targetPorts.Count; i++)
            {
                config.AppendLine(CultureInfo.InvariantCulture, $"[broker{i}]")
                    .AppendLine(CultureInfo.InvariantCulture, $"accept = 127.0.0.1:{ports[i]}")
                    .AppendLine(CultureInfo.InvariantCulture, $"connect = 127.0.0.1:{targetPorts[i]}")
                    .AppendLine(CultureInfo.InvariantCulture, $"cert = {Path.Combine(dir, "server.pem")}")
                    .AppendLine(CultureInfo.InvariantCulture, $"key = {Path.Combine(dir, "server.key")}");
                if (requireClientCertificate)
                {
                    config.AppendLine("verify = 2").AppendLine(CultureInfo.InvariantCulture, $"CAfile = {Path.Combine(dir, "ca.pem")}");
                }
            }

            var configPath = Path.Combine(dir, "stunnel.conf");
            File.WriteAllText(configPath, config.ToString());
            var start = new ProcessStartInfo(stunnel)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            start.ArgumentList.Add(configPath);
            var process = Process.Start(start) ?? throw new InvalidOperationException("stunnel did not start.");
            var proxy = new StunnelTlsProxy(dir, process, ports);
            proxy.WaitUntilListening();
            return proxy;
        }
        catch
        {
            TryDelete(dir);
            throw;
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }

        _process.Dispose();
        TryDelete(Directory);
    }

    private void WaitUntilListening()
    {
        var deadline = Stopwatch.StartNew();
        foreach (var port in Ports)
        {
            while (true)
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"stunnel exited with {_process.ExitCode}: {Output}");
                }

                try
                {
                    using var client = new TcpClient();
                    client.Connect(IPAddress.Loopback, port);
                    break;
                }
                catch (SocketException) when (deadline.Elapsed < StartTimeout)
                {
                    _process.WaitForExit(50);
                }
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static void GenerateCertificates(string openssl, string dir)
    {
        File.WriteAllText(Path.Combine(dir, "server.ext"), "subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n");
        File.WriteAllText(Path.Combine(dir, "client.ext"), "extendedKeyUsage = clientAuth\n");
        string[][] steps =
        [
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", "/CN=centrifugo-actors test CA"],
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "wrong-ca.key", "-out", "wrong-ca.pem", "-days", "2",
                "-subj", "/CN=unrelated CA"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
                "-days", "2", "-extfile", "server.ext"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
                "-subj", "/CN=centrifugo-actors client"],
            ["x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem",
                "-days", "2", "-extfile", "client.ext"],
        ];
        foreach (var args in steps)
        {
            var start = new ProcessStartInfo(openssl)
            {
                WorkingDirectory = dir,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start) ?? throw new InvalidOperationException("openssl did not start.");
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(30_000) || process.ExitCode != 0)
            {
                throw new InvalidOperationException($"openssl {string.Join(' ', args)} failed: {stderr.Result}");
            }
        }
    }

    private static int FreePort() => LoopbackPort.Free();

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin").Append("/usr/sbin")
            .Select(d => Path.Combine(d, name))
            .FirstOrDefault(File.Exists);

    private static void TryDelete(string dir)
    {
        try
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // best effort: a temp dir
        }
        catch (UnauthorizedAccessException)
        {
            // best effort: a temp dir
        }
    }
}
