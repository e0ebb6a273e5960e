using System.Numerics;
using Net.Pkcs11Interop.Common;
using ShareVault.Custody.Threshold.Shoup;
using ShareVault.Hardware;
using ShareVault.Hardware.Pkcs11;
using ShareVault.TestSupport;
using Pkcs11Uri = ShareVault.Hardware.Pkcs11.Pkcs11Uri;

namespace ShareVault.Custody.Tests.Threshold.Shoup;

public sealed class Pkcs11ShoupShareTests
{
    [Fact]
    public void Dh_derive_partial_inside_softhsm_equals_z_to_the_share()
    {
        var vectors = ShoupVectors.For(2048);
        var dealing = ShoupDealer.Deal(vectors.P, vectors.Q, 2, 3, ShoupDealer.DefaultExponent);
        using var store = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(SoftHsm.Shared.Uri("spare-1")));
        var label = $"s-{Guid.NewGuid():N}"[..14];
        try
        {
            store.ImportShoupShare(label, key => ShareWrapping.Wrap(key, dealing.Modulus, ShoupCeremony.ShareGenerator, dealing.Shares[0]), persistent: true);
            var z = ShoupDealer.RandomBelow(dealing.Modulus - 3) + 2;
            var partial = BigEndian.ToInteger(store.ShoupPartial(label, BigEndian.ToBytes(z, 256)));
            Assert.Equal(BigInteger.ModPow(z, dealing.Shares[0], dealing.Modulus), partial);
            Assert.Contains(store.ListObjects(), o => o.Label == label && o.Kind == "shoup-share");
        }
        finally
        {
            store.DeleteKey(label);
        }
    }

    [Fact]
    public void Share_value_cannot_be_read_or_wrapped_out_through_pkcs11()
    {
        var vectors = ShoupVectors.For(2048);
        var dealing = ShoupDealer.Deal(vectors.P, vectors.Q, 2, 3, ShoupDealer.DefaultExponent);
        using var store = Pkcs11ShareStore.Open(Pkcs11Uri.Parse(SoftHsm.Shared.Uri("spare-1")));
        var label = $"s-{Guid.NewGuid():N}"[..14];
        try
        {
            store.ImportShoupShare(label, key => ShareWrapping.Wrap(key, dealing.Modulus, ShoupCeremony.ShareGenerator, dealing.Shares[1]), persistent: true);
            store.WithSession(session =>
            {
                var share = Assert.Single(store.FindObjects(session, CKO.CKO_PRIVATE_KEY, label, CKK.CKK_DH));
                var attributes = session.GetAttributeValue(share,
                    [CKA.CKA_VALUE, CKA.CKA_TOKEN, CKA.CKA_PRIVATE, CKA.CKA_SENSITIVE, CKA.CKA_EXTRACTABLE, CKA.CKA_PRIME]);
                // PKCS#11 v2.40 §4.8: a sensitive or unextractable attribute is never revealed (CKR_ATTRIBUTE_SENSITIVE).
                Assert.True(attributes[0].CannotBeRead);
                Assert.True(attributes[1].GetValueAsBool());
                Assert.True(attributes[2].GetValueAsBool());
                Assert.True(attributes[3].GetValueAsBool());
                Assert.False(attributes[4].GetValueAsBool());
                Assert.Equal(dealing.Modulus, BigEndian.ToInteger(attributes[5].GetValueAsByteArray()));

                // Nor can it be wrapped out under a key the caller makes.
                var f = store.Module.Factories;
                var wrapTemplate = new List<Net.Pkcs11Interop.HighLevelAPI.IObjectAttribute>
                {
                    f.ObjectAttributeFactory.Create(CKA.CKA_TOKEN, false),
                    f.ObjectAttributeFactory.Create(CKA.CKA_VALUE_LEN, 32UL),
                    f.ObjectAttributeFactory.Create(CKA.CKA_WRAP, true),
                };
                using var generate = f.MechanismFactory.Create(CKM.CKM_AES_KEY_GEN);
                var wrapKey = session.GenerateKey(generate, wrapTemplate);
                using var wrap = f.MechanismFactory.Create(CKM.CKM_AES_KEY_WRAP_PAD);
                var refused = Assert.Throws<Pkcs11Exception>(() => session.WrapKey(wrap, wrapKey, share));
                Assert.Equal(CKR.CKR_KEY_UNEXTRACTABLE, refused.RV);
                session.DestroyObject(wrapKey);
                return 0;
            });
        }
        finally
        {
            store.DeleteKey(label);
        }
    }
}
