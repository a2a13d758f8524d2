using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Npgsql;

namespace Centrifugo.Actors.Testing.Postgres;

/// <summary>How to configure a private PostgreSQL server.</summary>
/// <param name="Tuned">true (tests): fsync, synchronous_commit and full_page_writes off. false (benchmarks): stock durability
/// settings.</param>
/// <param name="MaxConnections">max_connections; raised from the stock 100 because every test class opens pools.</param>
/// <param name="Ssl">Enable TLS with a fresh self-signed certificate for CN=localhost / IP 127.0.0.1 (needs openssl).</param>
/// <param name="SslViaIntermediate">With <paramref name="Ssl"/>: the certificate is issued by an intermediate CA under a
/// fresh root (<see cref="PostgresInstance.RootCertificatePem"/>) and the server sends leaf + intermediate.</param>
/// <param name="ExtraSettings">postgresql.conf lines appended last (e.g. <c>shared_preload_libraries = 'pg_stat_statements'</c>).</param>
internal sealed record PostgresInstanceOptions(
    bool Tuned = true, int MaxConnections = 200, bool Ssl = false, bool SslViaIntermediate = false,
    IReadOnlyList<string>? ExtraSettings = null)
{
    public static PostgresInstanceOptions ForTests { get; } = new();
    public static PostgresInstanceOptions ForBenchmarks { get; } = new(Tuned: false);
}

/// <summary>
/// A private PostgreSQL server in a temporary directory, for tests, benchmarks and the demo. Needs the Debian
/// package (<c>apt-get install -y postgresql</c>) or PG_BIN pointing at a bin directory with initdb, pg_ctl.
/// As root the server runs as the <c>postgres</c> user (initdb refuses root). TCP uses scram-sha-256 with a random
/// superuser password, so DSNs carry a real secret. Servers are stopped on dispose and at process exit.
/// </summary>
internal sealed class PostgresInstance : IAsyncDisposable
{
    private const string DirectoryPrefix = "centrifugo-actors-pg-";
    private const string OwnerFile = "owner.pid";
    private static readonly ConcurrentDictionary<PostgresInstance, byte> Running = new();
    private static int _exitHookInstalled;

    private readonly string _binDirectory;
    private readonly string _rootDirectory;
    private readonly bool _asPostgresUser;
    private int _disposed;

    private PostgresInstance(string binDirectory, string rootDirectory, bool asPostgresUser, int port, string password)
    {
        _binDirectory = binDirectory;
        _rootDirectory = rootDirectory;
        _asPostgresUser = asPostgresUser;
        Port = port;
        Password = password;
    }

    public int Port { get; }

    /// <summary>Password of the superuser <c>postgres</c>.</summary>
    public string Password { get; }

    public string DataDirectory => Path.Combine(_rootDirectory, "data");

    /// <summary>PEM of the server certificate (its own CA) when started with <see cref="PostgresInstanceOptions.Ssl"/>.</summary>
    public string? ServerCertificatePem { get; private set; }

    /// <summary>With <see cref="PostgresInstanceOptions.SslViaIntermediate"/>: the root CA that issued the intermediate.</summary>
    public string? RootCertificatePem { get; private set; }

    /// <summary>Npgsql connection string to database <c>postgres</c>.</summary>
    public string ConnectionString => GetConnectionString("postgres");

    /// <summary>pgx/libpq URL form, as a Centrifugo config would carry it.</summary>
    public string UrlDsn => GetUrlDsn("postgres");

    /// <summary>libpq key/value form.</summary>
    public string KeyValueDsn => GetKeyValueDsn("postgres");

    public string GetConnectionString(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = "postgres",
        Password = Password,
        Database = database,
        SslMode = SslMode.Disable,
    }.ConnectionString;

    public string GetUrlDsn(string database) =>
        $"postgres://postgres:{Uri.EscapeDataString(Password)}@127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}" +
        $"/{database}?sslmode=disable";

    public string GetKeyValueDsn(string database) =>
        $"host=127.0.0.1 port={Port.ToString(CultureInfo.InvariantCulture)} user=postgres password={Password} dbname={database} " +
        "sslmode=disable";

    /// <summary>Starts a new server and waits until it accepts connections.</summary>
    /// <exception cref="InvalidOperationException">PostgreSQL binaries are missing or the server did not start (message includes the server
    /// log).</exception>
    public static async Task<PostgresInstance> StartAsync(
        PostgresInstanceOptions? options = null, CancellationToken cancellationToken = default)
    {
        TestLane.RequireInfrastructure("a PostgreSQL server");
        options ??= PostgresInstanceOptions.ForTests;
        var bin = FindBinDirectory();
        var asPostgres = Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root" || IsRoot();
        await SweepOrphansAsync(bin, asPostgres, cancellationToken);
        var root = Path.Combine(Path.GetTempPath(), DirectoryPrefix + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(root);
        await File.WriteAllTextAsync(
            Path.Combine(root, OwnerFile), Environment.ProcessId.ToString(CultureInfo.InvariantCulture), cancellationToken);
        // Hex: no character needs escaping in any DSN form, yet it is a real 128-bit secret.
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var port = FreePort();
        var instance = new PostgresInstance(bin, root, asPostgres, port, password);
        try
        {
            await instance.InitAsync(options, cancellationToken);
            InstallExitHook();
            Running.TryAdd(instance, 0);
            await instance.StartServerAsync(cancellationToken);
            return instance;
        }
        catch
        {
            await instance.DisposeAsync();
            throw;
        }
    }

    /// <summary>Creates a database (name must be a plain identifier) and returns its Npgsql connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        var quoted = Centrifugo.Actors.Outbox.OutboxSql.QuoteIdentifier(name);
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand($"CREATE DATABASE {quoted}", connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return GetConnectionString(name);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        Running.TryRemove(this, out _);
        NpgsqlConnection.ClearAllPools();
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            var fast = await RunAsync(
                "pg_ctl", ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", "10"], CancellationToken.None, throwOnError: false);
            if (fast != 0)
            {
                await RunAsync("pg_ctl", ["stop", "-D", DataDirectory, "-m", "immediate", "-w", "-t", "10"], CancellationToken.None,
                    throwOnError: false);
            }
        }

        DeleteDirectory();
    }

    /// <summary>
    /// Stops and deletes servers whose owning process is gone (a test run killed before its exit hook ran, or a
    /// host that stopped the runner while the hook was deleting files).
    /// </summary>
    private static async Task SweepOrphansAsync(string bin, bool asPostgres, CancellationToken cancellationToken)
    {
        foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), DirectoryPrefix + "*"))
        {
            int owner;
            try
            {
                var ownerFile = Path.Combine(dir, OwnerFile);
                owner = File.Exists(ownerFile) && int.TryParse(await File.ReadAllTextAsync(ownerFile, cancellationToken), NumberStyles.None,
                    CultureInfo.InvariantCulture, out var pid) ? pid : -1;
            }
            catch (IOException)
            {
                continue;
            }

            // No owner file: either ours being created right now by another run, or very old; only touch the latter.
            if ((owner > 0 && IsAlive(owner)) || (owner <= 0 && Directory.GetLastWriteTimeUtc(dir) > DateTime.UtcNow.AddMinutes(-10)))
            {
                continue;
            }

            var orphan = new PostgresInstance(bin, dir, asPostgres, 0, "");
            await orphan.DisposeAsync();
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private async Task InitAsync(PostgresInstanceOptions options, CancellationToken cancellationToken)
    {
        var passwordFile = Path.Combine(_rootDirectory, "pwfile");
        await File.WriteAllTextAsync(passwordFile, Password + "\n", cancellationToken);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        Directory.CreateDirectory(Path.Combine(_rootDirectory, "sock"));
        if (_asPostgresUser)
        {
            await RunRawAsync("chown", ["-R", "postgres:postgres", _rootDirectory], cancellationToken, throwOnError: true);
        }

        await RunAsync("initdb",
            ["-D", DataDirectory, "-U", "postgres", "--pwfile", passwordFile, "--auth-local=trust", "--auth-host=scram-sha-256",
             "-E", "UTF8", "--no-locale", "--no-sync"], cancellationToken);
        File.Delete(passwordFile);

        var conf = new List<string>
        {
            "",
            "# centrifugo-actors test instance",
            $"port = {Port.ToString(CultureInfo.InvariantCulture)}",
            "listen_addresses = '127.0.0.1'",
            $"unix_socket_directories = '{Path.Combine(_rootDirectory, "sock")}'",
            $"max_connections = {options.MaxConnections.ToString(CultureInfo.InvariantCulture)}",
            "password_encryption = 'scram-sha-256'",
        };
        if (options.Tuned)
        {
            conf.AddRange(["fsync = off", "synchronous_commit = off", "full_page_writes = off"]);
        }

        if (options.Ssl)
        {
            await (options.SslViaIntermediate ? CreateCertificateChainAsync(cancellationToken) : CreateCertificateAsync(cancellationToken));
            conf.AddRange(["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]);
        }

        conf.AddRange(options.ExtraSettings ?? []);
        await File.AppendAllLinesAsync(Path.Combine(DataDirectory, "postgresql.conf"), conf, cancellationToken);
    }

    private async Task CreateCertificateAsync(CancellationToken cancellationToken)
    {
        var crt = Path.Combine(DataDirectory, "server.crt");
        var key = Path.Combine(DataDirectory, "server.key");
        await RunRawAsync("openssl",
            ["req", "-new", "-x509", "-days", "2", "-nodes", "-newkey", "rsa:2048", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", crt], cancellationToken, throwOnError: true);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite); // PostgreSQL refuses group/world-readable keys
        }

        if (_asPostgresUser)
        {
            await RunRawAsync("chown", ["postgres:postgres", crt, key], cancellationToken, throwOnError: true);
        }

        ServerCertificatePem = await File.ReadAllTextAsync(crt, cancellationToken);
    }

    private async Task CreateCertificateChainAsync(CancellationToken cancellationToken)
    {
        var dir = Path.Combine(_rootDirectory, "pki");
        Directory.CreateDirectory(dir);
        string F(string name) => Path.Combine(dir, name);
        await File.WriteAllTextAsync(
            F("ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n", cancellationToken);
        await File.WriteAllTextAsync(
            F("leaf.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n", cancellationToken);
        async Task Openssl(params string[] arguments) => await RunRawAsync("openssl", arguments, cancellationToken, throwOnError: true);
        await Openssl("req", "-new", "-x509", "-days", "2", "-nodes", "-newkey", "rsa:2048", "-subj", "/CN=test root",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", F("root.key"), "-out", F("root.crt"));
        await Openssl("req", "-new", "-nodes", "-newkey", "rsa:2048", "-subj", "/CN=test intermediate",
            "-keyout", F("int.key"), "-out", F("int.csr"));
        await Openssl("x509", "-req", "-days", "2", "-in", F("int.csr"), "-CA", F("root.crt"), "-CAkey", F("root.key"), "-CAcreateserial",
            "-extfile", F("ca.ext"), "-out", F("int.crt"));
        await Openssl("req", "-new", "-nodes", "-newkey", "rsa:2048", "-subj", "/CN=localhost",
            "-keyout", F("leaf.key"), "-out", F("leaf.csr"));
        await Openssl("x509", "-req", "-days", "2", "-in", F("leaf.csr"), "-CA", F("int.crt"), "-CAkey", F("int.key"), "-CAcreateserial",
            "-extfile", F("leaf.ext"), "-out", F("leaf.crt"));

        var crt = Path.Combine(DataDirectory, "server.crt");
        var key = Path.Combine(DataDirectory, "server.key");
        // The server sends its certificate followed by the intermediate, as a real deployment does.
        await File.WriteAllTextAsync(crt,
            await File.ReadAllTextAsync(F("leaf.crt"), cancellationToken) + await File.ReadAllTextAsync(F("int.crt"), cancellationToken),
            cancellationToken);
        File.Copy(F("leaf.key"), key);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        if (_asPostgresUser)
        {
            await RunRawAsync("chown", ["postgres:postgres", crt, key], cancellationToken, throwOnError: true);
        }

        ServerCertificatePem = await File.ReadAllTextAsync(F("leaf.crt"), cancellationToken);
        RootCertificatePem = await File.ReadAllTextAsync(F("root.crt"), cancellationToken);
    }

    private async Task StartServerAsync(CancellationToken cancellationToken)
    {
        var log = Path.Combine(_rootDirectory, "server.log");
        var rc = await RunAsync(
            "pg_ctl", ["start", "-D", DataDirectory, "-l", log, "-w", "-t", "60"], cancellationToken, throwOnError: false);
        if (rc != 0)
        {
            throw new InvalidOperationException($"PostgreSQL did not start (pg_ctl exit code {rc}). Server log:\n{ReadLog(log)}");
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        await using var dataSource = NpgsqlDataSource.Create(ConnectionString + ";Pooling=false;Timeout=2");
        while (true)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
                return;
            }
            catch (NpgsqlException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, cancellationToken); // readiness poll, bounded by the deadline
            }
            catch (NpgsqlException e)
            {
                throw new InvalidOperationException(
                    $"PostgreSQL does not accept connections on port {Port}. Server log:\n{ReadLog(log)}", e);
            }
        }
    }

    private static string ReadLog(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : "(no log)";
        }
        catch (IOException)
        {
            return "(log unreadable)";
        }
    }

    private static string FindBinDirectory()
    {
        var fromEnv = Environment.GetEnvironmentVariable("PG_BIN");
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return File.Exists(Path.Combine(fromEnv, "pg_ctl"))
                ? fromEnv
                : throw new InvalidOperationException($"PG_BIN={fromEnv} does not contain pg_ctl.");
        }

        const string debianRoot = "/usr/lib/postgresql";
        var candidates = Directory.Exists(debianRoot)
            ? Directory.GetDirectories(debianRoot)
                .Select(d => (Dir: Path.Combine(d, "bin"),
                    Version: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : -1))
                .Where(c => File.Exists(Path.Combine(c.Dir, "pg_ctl")))
                .OrderByDescending(c => c.Version)
                .ToList()
            : [];
        return candidates.Count > 0
            ? candidates[0].Dir
            : throw new InvalidOperationException(
                "PostgreSQL server binaries not found. Install them with `apt-get install -y postgresql` " +
                "or set PG_BIN to the directory containing initdb and pg_ctl.");
    }

    private static bool IsRoot()
    {
        try
        {
            return File.ReadAllLines("/proc/self/status")
                .FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?
                .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1) == "0";
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static int FreePort() => LoopbackPort.Free();

    private Task<int> RunAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken, bool throwOnError = true)
    {
        var path = Path.Combine(_binDirectory, tool);
        return _asPostgresUser
            ? RunRawAsync("runuser", ["-u", "postgres", "--", path, .. arguments], cancellationToken, throwOnError)
            : RunRawAsync(path, arguments, cancellationToken, throwOnError);
    }

    private static async Task<int> RunRawAsync(
        string fileName, IReadOnlyList<string> arguments, CancellationToken cancellationToken, bool throwOnError)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // pg_ctl must not inherit a cwd the postgres user cannot read
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var a in arguments)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {fileName}");
        // pg_ctl start leaves the server holding inherited pipes open: read to EOF only until the process exits.
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0 && throwOnError)
        {
            var output = await Task.WhenAny(
                Task.WhenAll(stdout, stderr), Task.Delay(TimeSpan.FromSeconds(2), cancellationToken)) is Task<string[]>
                ? stdout.Result + stderr.Result
                : "(output unavailable)";
            throw new InvalidOperationException($"{Path.GetFileName(fileName)} failed with exit code {process.ExitCode}: {output}");
        }

        return process.ExitCode;
    }

    private static void InstallExitHook()
    {
        if (Interlocked.Exchange(ref _exitHookInstalled, 1) == 1)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var instance in Running.Keys)
            {
                instance.StopImmediatelyAtExit();
            }
        };
    }

    private void StopImmediatelyAtExit()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        // One shell does stop + delete: test runners may kill the process while the exit hook still runs, and the
        // shell survives that. Leftovers are swept by the next StartAsync anyway.
        var pgCtl = Path.Combine(_binDirectory, "pg_ctl");
        var stop = (_asPostgresUser ? "runuser -u postgres -- " : "") +
                   $"'{pgCtl}' stop -D '{DataDirectory}' -m immediate -w -t 10 >/dev/null 2>&1; rm -rf '{_rootDirectory}'";
        try
        {
            var info = new ProcessStartInfo("/bin/sh", ["-c", stop])
            {
                UseShellExecute = false,
                WorkingDirectory = Path.GetTempPath(),
            };
            using var process = Process.Start(info);
            process?.WaitForExit(15_000);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // best effort at exit
        }
    }

    private void DeleteDirectory()
    {
        try
        {
            if (Directory.Exists(_rootDirectory))
            {
                Directory.Delete(_rootDirectory, recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // a leftover temp directory is harmless; the server is already stopped
        }
    }
}
