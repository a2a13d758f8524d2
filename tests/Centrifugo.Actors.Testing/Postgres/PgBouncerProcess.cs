using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Centrifugo.Actors.Testing.Postgres;

/// <summary>
/// A real PgBouncer (the Debian package's <c>/usr/sbin/pgbouncer</c>, installed by scripts/ensure-deps.sh) in front of a
/// test <see cref="PostgresInstance"/>, in transaction pooling mode, on a free loopback port. Clients authenticate
/// with <c>trust</c> (loopback, tests only); PgBouncer logs in to PostgreSQL with the instance's password. Run as the
/// <c>postgres</c> user when the tests run as root (PgBouncer refuses root). Stopped and its directory removed on dispose.
/// </summary>
internal sealed class PgBouncerProcess : IAsyncDisposable
{
    private const string Binary = "/usr/sbin/pgbouncer";
    private readonly Process _process;
    private readonly string _directory;

    private PgBouncerProcess(Process process, string directory, int port, string password)
    {
        _process = process;
        _directory = directory;
        Port = port;
        Password = password;
    }

    public int Port { get; }

    private string Password { get; }

    /// <summary>A pgx-style URL DSN to <paramref name="database"/> through PgBouncer (append <c>&amp;param=value</c>).</summary>
    public string UrlDsn(string database = "postgres") =>
        $"postgres://postgres:{Uri.EscapeDataString(Password)}@127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}" +
        $"/{database}?sslmode=disable";

    public static bool IsInstalled => File.Exists(Binary);

    public static async Task<PgBouncerProcess> StartAsync(PostgresInstance postgres, string poolMode = "transaction")
    {
        if (!IsInstalled)
        {
            throw new InvalidOperationException(
                $"{Binary} not found: install it with `apt-get install -y pgbouncer` (scripts/ensure-deps.sh does).");
        }

        var directory = Path.Combine(Path.GetTempPath(), "cab-pgbouncer-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        var port = FreePort();
        var pg = postgres.Port.ToString(CultureInfo.InvariantCulture);
        await File.WriteAllTextAsync(Path.Combine(directory, "userlist.txt"), $"\"postgres\" \"{postgres.Password}\"\n");
        await File.WriteAllTextAsync(Path.Combine(directory, "pgbouncer.ini"), $"""
            [databases]
            * = host=127.0.0.1 port={pg}
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = {port.ToString(CultureInfo.InvariantCulture)}
            unix_socket_dir =
            auth_type = trust
            auth_file = {directory}/userlist.txt
            pool_mode = {poolMode}
            max_client_conn = 500
            default_pool_size = 10
            ignore_startup_parameters = extra_float_digits
            logfile = {directory}/pgbouncer.log
            pidfile = {directory}/pgbouncer.pid
            """);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            await RunAsync("chown", ["-R", "postgres", directory]);
        }

        var start = new ProcessStartInfo(asRoot ? "runuser" : Binary)
            { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.GetTempPath() };
        if (asRoot)
        {
            foreach (var a in new[] { "-u", "postgres", "--", Binary })
            {
                start.ArgumentList.Add(a);
            }
        }
        start.ArgumentList.Add(Path.Combine(directory, "pgbouncer.ini"));
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start pgbouncer");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var bouncer = new PgBouncerProcess(process, directory, port, postgres.Password);
        try
        {
            await Poll.UntilAsync(() => Accepts(port) || process.HasExited, "pgbouncer listening", TimeSpan.FromSeconds(15));
            if (process.HasExited)
            {
                throw new InvalidOperationException($"pgbouncer exited with {process.ExitCode}: {bouncer.Log}");
            }
            return bouncer;
        }
        catch
        {
            await bouncer.DisposeAsync();
            throw;
        }
    }

    /// <summary>PgBouncer's own log (connection and protocol errors it saw).</summary>
    public string Log =>
        File.Exists(Path.Combine(_directory, "pgbouncer.log")) ? File.ReadAllText(Path.Combine(_directory, "pgbouncer.log")) : "";

    public async ValueTask DisposeAsync()
    {
        var pidFile = Path.Combine(_directory, "pgbouncer.pid");
        if (File.Exists(pidFile)
            && int.TryParse((await File.ReadAllTextAsync(pidFile)).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            try
            {
                using var daemon = Process.GetProcessById(pid);
                daemon.Kill();
                await daemon.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or TimeoutException)
            {
                // already gone
            }
        }
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static bool Accepts(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePort() => LoopbackPort.Free();

    private static async Task RunAsync(string file, string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments) { UseShellExecute = false })
            ?? throw new InvalidOperationException($"cannot start {file}");
        await process.WaitForExitAsync();
    }
}
